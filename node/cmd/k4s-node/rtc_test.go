package main

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestRTCTimeRoundTrip(t *testing.T) {
	for _, s := range []string{"2020-01-01T00:00:00Z", "2026-12-07T23:59:59Z", "2099-02-28T12:30:00Z"} {
		want, _ := time.Parse(time.RFC3339, s)
		got, err := fromRTCTime(toRTCTime(want))
		if err != nil || !got.Equal(want) {
			t.Errorf("%s: %s, %v", s, got, err)
		}
	}
	rt := toRTCTime(time.Date(2026, 12, 7, 1, 2, 3, 0, time.FixedZone("x", 3600)))
	if rt.Year != 126 || rt.Mon != 11 || rt.Mday != 7 || rt.Hour != 0 || rt.Min != 2 || rt.Sec != 3 {
		t.Errorf("the RTC holds UTC, years since 1900 and months from 0: %+v", *rt)
	}
	for _, bad := range []unix.RTCTime{{Mon: 12, Mday: 1, Year: 120}, {Mon: 0, Mday: 0, Year: 120}, {Mon: 0, Mday: 1, Year: 0}} {
		if _, err := fromRTCTime(&bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}
