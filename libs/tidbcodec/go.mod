module github.com/tistream/tistream/libs/tidbcodec

go 1.26
