module github.com/tistream/tistream/proto/gen/go

go 1.26

require google.golang.org/protobuf v1.36.12
