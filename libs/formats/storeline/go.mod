module github.com/tistream/tistream/libs/formats/storeline

go 1.26
