package main

import (
	"encoding/binary"
	"net"
	"strings"
	"testing"
	"time"
)

// fakeNTP is an SNTP server on the loopback whose clock is the local clock
// plus skew; answer may spoil its answers.
func fakeNTP(t *testing.T, skew time.Duration, answer func(resp []byte)) string {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	go func() {
		buf := make([]byte, 512)
		for {
			n, addr, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			if n < 48 || buf[0]&7 != 3 {
				continue
			}
			rx := time.Now().Add(skew)
			resp := make([]byte, 48)
			resp[0] = 0<<6 | 4<<3 | 4 // LI 0, version 4, server
			resp[1] = 2               // stratum
			copy(resp[24:32], buf[40:48])
			binary.BigEndian.PutUint64(resp[32:40], toNTPTime(rx))
			binary.BigEndian.PutUint64(resp[40:48], toNTPTime(time.Now().Add(skew)))
			if answer != nil {
				answer(resp)
			}
			conn.WriteTo(resp, addr)
		}
	}()
	return conn.LocalAddr().String()
}

func TestNTPQueryMeasuresTheOffset(t *testing.T) {
	for _, skew := range []time.Duration{3 * time.Hour, -90 * time.Second, 0, 6 * 365 * 24 * time.Hour} {
		s, err := ntpQuery(fakeNTP(t, skew, nil), time.Second)
		if err != nil {
			t.Fatalf("skew %s: %v", skew, err)
		}
		if d := abs(s.offset - skew); d > 50*time.Millisecond {
			t.Errorf("skew %s: offset %s (off by %s)", skew, s.offset, d)
		}
		if s.delay < 0 || s.delay > time.Second {
			t.Errorf("skew %s: delay %s", skew, s.delay)
		}
	}
}

func TestNTPRefusesBadAnswers(t *testing.T) {
	for name, spoil := range map[string]func([]byte){
		"kiss-o'-death":    func(r []byte) { r[1] = 0; copy(r[12:16], "RATE") },
		"stratum 16":       func(r []byte) { r[1] = 16 },
		"leap indicator 3": func(r []byte) { r[0] |= 3 << 6 },
		"mode 3":           func(r []byte) { r[0] = r[0]&^7 | 3 },
		"no transmit time": func(r []byte) { clear(r[40:48]) },
	} {
		_, err := ntpQuery(fakeNTP(t, time.Hour, spoil), 300*time.Millisecond)
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// An answer that does not echo the request's random transmit time is not
	// taken (a forged or stale answer): the query times out instead.
	_, err := ntpQuery(fakeNTP(t, time.Hour, func(r []byte) { r[24] ^= 0xff }), 300*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "timeout") {
		t.Errorf("an answer to another request: %v", err)
	}
}

func TestBestSampleNamesServersThatDoNotAnswer(t *testing.T) {
	old := ntpTimeout
	ntpTimeout = 200 * time.Millisecond
	defer func() { ntpTimeout = old }()
	dead, err := net.ListenPacket("udp", "127.0.0.1:0") // bound, never answers
	if err != nil {
		t.Fatal(err)
	}
	defer dead.Close()
	good := fakeNTP(t, 2*time.Minute, nil)
	s, err := bestSample([]string{dead.LocalAddr().String(), good})
	if err != nil || s.server != good || abs(s.offset-2*time.Minute) > 50*time.Millisecond {
		t.Fatalf("one good server: %+v, %v", s, err)
	}
	_, err = bestSample([]string{dead.LocalAddr().String()})
	if err == nil || !strings.Contains(err.Error(), dead.LocalAddr().String()) {
		t.Fatalf("no answer: %v", err)
	}
}

func TestNTPTimestamps(t *testing.T) {
	for _, s := range []string{"1970-01-01T00:00:00Z", "2026-12-07T04:00:00.25Z", "2036-02-07T06:28:15Z", "2036-02-07T06:28:17.5Z", "2050-06-01T12:00:00Z"} {
		want, _ := time.Parse(time.RFC3339Nano, s)
		if got := ntpTime(toNTPTime(want)); abs(got.Sub(want)) > time.Microsecond {
			t.Errorf("%s: round trip gives %s", s, got)
		}
	}
	// 1900-based seconds with the high bit set: era 0.
	if got := ntpTime(uint64(ntpEpochOffset) << 32); !got.Equal(time.Unix(0, 0)) {
		t.Errorf("NTP %d s: %s, want 1970-01-01", ntpEpochOffset, got)
	}
}

func TestParseNTPServers(t *testing.T) {
	got, err := parseNTPServers("10.0.2.2:1123, time.example.org,[fd00::1]:123")
	want := []string{"10.0.2.2:1123", "time.example.org:123", "[fd00::1]:123"}
	if err != nil || strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("got %v, %v; want %v", got, err, want)
	}
	if got, err := parseNTPServers(""); err != nil || len(got) != 0 {
		t.Fatalf("empty: %v, %v", got, err)
	}
	for _, bad := range []string{"10.0.2.2:port", "http://x/", ":123", "h:70000"} {
		if _, err := parseNTPServers(bad); err == nil || !strings.Contains(err.Error(), "k4s.ntp=") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
