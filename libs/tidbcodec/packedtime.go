package tidbcodec

import "fmt"

// TiDB stores DATE, DATETIME and TIMESTAMP as one packed uint64 (TiDB's
// Time.ToPackedUint), most significant field first so the integer order is
// the time order:
//
//	bits 63..41  year*13+month   (month 0..12: 13 so that month 0 fits)
//	bits 40..36  day
//	bits 35..24  hour<<12 | minute<<6 | second   (17 bits: hour 5, minute 6, second 6)
//	bits 23..0   microsecond
//
// The zero date 0000-00-00 00:00:00 packs to 0. TIMESTAMP values are stored
// in UTC; converting to a session time zone is the reader's business.

// Time is a calendar date and wall-clock time with microseconds, as TiDB
// stores it. Zero fields (MySQL zero dates) are allowed.
type Time struct {
	Year, Month, Day     int
	Hour, Minute, Second int
	Microsecond          int
}

// Pack returns the packed form of t. Fields out of range are not checked;
// they must fit the layout above to survive UnpackTime.
func (t Time) Pack() uint64 {
	ymd := uint64(t.Year*13+t.Month)<<5 | uint64(t.Day)
	hms := uint64(t.Hour)<<12 | uint64(t.Minute)<<6 | uint64(t.Second)
	return (ymd<<17|hms)<<24 | uint64(t.Microsecond)
}

// UnpackTime splits a packed time into its fields.
func UnpackTime(p uint64) Time {
	ymdhms := p >> 24
	ymd, hms := ymdhms>>17, ymdhms&(1<<17-1)
	ym := ymd >> 5
	return Time{
		Year:        int(ym / 13),
		Month:       int(ym % 13),
		Day:         int(ymd & (1<<5 - 1)),
		Hour:        int(hms >> 12),
		Minute:      int(hms >> 6 & (1<<6 - 1)),
		Second:      int(hms & (1<<6 - 1)),
		Microsecond: int(p & (1<<24 - 1)),
	}
}

func (t Time) String() string {
	return fmt.Sprintf("%04d-%02d-%02d %02d:%02d:%02d.%06d", t.Year, t.Month, t.Day, t.Hour, t.Minute, t.Second, t.Microsecond)
}
