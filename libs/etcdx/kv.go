package etcdx

import (
	"context"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"
)

// GetProto reads key into m; found is false when the key does not exist.
// It returns the key's mod revision (for compare-and-swap).
func GetProto(ctx context.Context, cli *clientv3.Client, key string, m proto.Message) (found bool, rev int64, err error) {
	resp, err := cli.Get(ctx, key)
	if err != nil {
		return false, 0, fmt.Errorf("etcd get %s: %w", key, err)
	}
	if len(resp.Kvs) == 0 {
		return false, 0, nil
	}
	if err := proto.Unmarshal(resp.Kvs[0].Value, m); err != nil {
		return false, 0, fmt.Errorf("etcd value of %s does not decode as %T: %w", key, m, err)
	}
	return true, resp.Kvs[0].ModRevision, nil
}

// ListProto reads every key under prefix, decoding each value with newMsg.
func ListProto[M proto.Message](ctx context.Context, cli *clientv3.Client, prefix string, newMsg func() M) (map[string]M, int64, error) {
	resp, err := cli.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, 0, fmt.Errorf("etcd list %s: %w", prefix, err)
	}
	out := make(map[string]M, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		m := newMsg()
		if err := proto.Unmarshal(kv.Value, m); err != nil {
			return nil, 0, fmt.Errorf("etcd value of %s does not decode as %T: %w", kv.Key, m, err)
		}
		out[string(kv.Key)] = m
	}
	return out, resp.Header.Revision, nil
}

// Marshal encodes a value for etcd.
func Marshal(m proto.Message) string {
	b, err := proto.Marshal(m)
	if err != nil {
		// Marshalling our own messages cannot fail; a failure is a bug.
		panic(fmt.Sprintf("etcdx: marshal %T: %v", m, err))
	}
	return string(b)
}

// PutIfRevision writes key only if its mod revision is still rev (0 = the
// key must not exist). It reports whether the write happened.
func PutIfRevision(ctx context.Context, cli *clientv3.Client, key string, rev int64, m proto.Message, opts ...clientv3.OpOption) (bool, error) {
	resp, err := cli.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).
		Then(clientv3.OpPut(key, Marshal(m), opts...)).
		Commit()
	if err != nil {
		return false, fmt.Errorf("etcd put %s: %w", key, err)
	}
	return resp.Succeeded, nil
}
