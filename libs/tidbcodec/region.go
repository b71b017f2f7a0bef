package tidbcodec

// Region boundaries. In TiDB's (API v1, transactional) clusters TiKV and PD
// keep region start and end keys in memcomparable form: EncodeBytes of the
// raw key. An empty boundary means unbounded (the first region's start, the
// last region's end) and is never encoded. This is what client-go's codecV1
// does; it too decodes only the leading memcomparable string and ignores
// anything after it.

// EncodeRegionKey returns the region-boundary form of a raw key; an empty
// key (unbounded) stays empty.
//
// client-go encodes an empty *start* key of a lookup as EncodeBytes(nil)
// (9 bytes); as a lower bound that is equivalent, since no encoded key sorts
// between "" and it.
func EncodeRegionKey(raw []byte) []byte {
	if len(raw) == 0 {
		return []byte{}
	}
	return EncodeBytes(nil, raw)
}

// DecodeRegionKey returns the raw key of a region boundary; an empty
// boundary stays empty. Bytes after the memcomparable string are ignored, as
// client-go ignores them.
func DecodeRegionKey(enc []byte) ([]byte, error) {
	if len(enc) == 0 {
		return []byte{}, nil
	}
	raw, _, err := DecodeBytes(enc)
	if err != nil {
		return nil, within(err, "region key", 0, "memcomparable bytes")
	}
	return raw, nil
}

// DecodeRegionSpan turns a region's encoded boundaries into a raw-key span.
func DecodeRegionSpan(encStart, encEnd []byte) (Span, error) {
	start, err := DecodeRegionKey(encStart)
	if err != nil {
		return Span{}, err
	}
	end, err := DecodeRegionKey(encEnd)
	if err != nil {
		return Span{}, err
	}
	return Span{Start: start, End: end}, nil
}
