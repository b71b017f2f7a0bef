module github.com/tistream/tistream/client

go 1.26.0

require (
	github.com/stretchr/testify v1.12.1
	github.com/tistream/tistream/libs/tidbcodec v0.0.0-00010101000000-000000000000
	github.com/tistream/tistream/proto/gen/go v0.0.0
	google.golang.org/grpc v1.85.0
)

require (
	go.yaml.in/yaml/v3 v3.0.5 // indirect
	golang.org/x/net v0.60.0 // indirect
	golang.org/x/sys v0.48.0 // indirect
	golang.org/x/text v0.42.0 // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20260817212433-ac3dfec99bb1 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
)

// The generated API and the codec live in this repository; a consumer
// outside it replaces them the same way (or uses the workspace).
replace (
	github.com/tistream/tistream/libs/tidbcodec => ../libs/tidbcodec
	github.com/tistream/tistream/proto/gen/go => ../proto/gen/go
)
