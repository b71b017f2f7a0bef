module github.com/tistream/tistream

go 1.26.0

require (
	github.com/klauspost/compress v1.20.3
	github.com/stretchr/testify v1.12.1
	github.com/tistream/tistream/proto/gen/go v0.0.0
	google.golang.org/protobuf v1.36.12
)

require go.yaml.in/yaml/v3 v3.0.5 // indirect

replace (
	github.com/tistream/tistream/libs/tidbcodec => ./libs/tidbcodec
	github.com/tistream/tistream/proto/gen/go => ./proto/gen/go
)
