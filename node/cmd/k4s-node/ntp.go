package main

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log"
	"net"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Clock synchronisation: a small SNTP client (RFC 4330, NTP version 4 packets)
// that sets the clock at boot, before the PKI is issued, and keeps it within
// a fraction of a second afterwards. TLS between nodes, with the operator's
// kubeconfig and the certificates' lifetimes all depend on it.
//
// Servers come from -ntp (kernel flag k4s.ntp=<host>[:<port>],...). u-root's
// dhclient, which configures the network (system.go), neither asks for nor
// passes on DHCP option 42 (NTP servers): it sets addresses, routes and
// resolv.conf only; so a DHCP network's NTP servers are not used.

// ntpTimeout: how long to wait for one answer (a variable for tests).
var ntpTimeout = 2 * time.Second

const (
	ntpPort     = "123"
	ntpAttempts = 3 // per server, at boot and at each periodic sync
	// ntpInterval: how often the clock is synchronised after boot.
	ntpInterval = 15 * time.Minute
	// stepThreshold: a larger offset sets the clock; a smaller one is slewed
	// (adjtimex), so that time never runs backwards by a little.
	stepThreshold = 500 * time.Millisecond
	// ntpEpochOffset: seconds from 1900-01-01 (NTP's era 0) to 1970-01-01.
	ntpEpochOffset = 2208988800
)

// parseNTPServers reads -ntp: host[:port] entries separated by commas.
func parseNTPServers(s string) ([]string, error) {
	var out []string
	for _, e := range strings.Split(s, ",") {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		host, port := e, ntpPort
		if h, p, err := net.SplitHostPort(e); err == nil {
			host, port = h, p
		}
		if host == "" || strings.ContainsAny(host, "/ ") {
			return nil, fmt.Errorf("-ntp (kernel flag k4s.ntp=) %q: want <host>[:<port>] entries separated by commas, e.g. k4s.ntp=10.0.2.2:1123,time.example.org", s)
		}
		if n, err := net.LookupPort("udp", port); err != nil || n == 0 {
			return nil, fmt.Errorf("-ntp (kernel flag k4s.ntp=) %q: %q is not a UDP port", s, port)
		}
		out = append(out, net.JoinHostPort(host, port))
	}
	return out, nil
}

// ntpTime converts a 64-bit NTP timestamp (seconds and fraction since 1900,
// in era 0 until 2036, after it in era 1) to a time.
func ntpTime(ts uint64) time.Time {
	sec, frac := int64(ts>>32), int64(ts&0xffffffff)
	if sec < 0x80000000 { // RFC 4330 section 3: the high bit clear means after 2036 (era 1)
		sec += 1 << 32
	}
	return time.Unix(sec-ntpEpochOffset, frac*1e9>>32).UTC()
}

// toNTPTime is the NTP timestamp of t (which must be after 1968).
func toNTPTime(t time.Time) uint64 {
	sec := uint64(t.Unix()+ntpEpochOffset) & 0xffffffff
	frac := uint64(t.Nanosecond()) << 32 / 1e9
	return sec<<32 | frac
}

// ntpSample is one server's answer: how far the local clock is off (add
// offset to it) and the round trip.
type ntpSample struct {
	server string
	offset time.Duration
	delay  time.Duration
}

// ntpQuery asks server for the time once (SNTP client mode).
func ntpQuery(server string, timeout time.Duration) (ntpSample, error) {
	conn, err := net.DialTimeout("udp", server, timeout)
	if err != nil {
		return ntpSample{}, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(timeout))
	req := make([]byte, 48)
	req[0] = 0<<6 | 4<<3 | 3 // LI 0, version 4, mode 3 (client)
	// The transmit timestamp is random (RFC 5905 section 9.1's advice): the
	// answer must echo it, so an off-path sender cannot forge answers.
	if _, err := rand.Read(req[40:48]); err != nil {
		return ntpSample{}, err
	}
	nonce := binary.BigEndian.Uint64(req[40:48])
	t1 := time.Now()
	if _, err := conn.Write(req); err != nil {
		return ntpSample{}, err
	}
	resp := make([]byte, 512)
	for {
		n, err := conn.Read(resp)
		if err != nil {
			return ntpSample{}, err
		}
		t4 := time.Now()
		s, err := ntpAnswer(resp[:n], nonce, t1, t4)
		if errors.Is(err, errNotOurs) {
			continue // a late answer to an earlier query
		}
		s.server = server
		return s, err
	}
}

var errNotOurs = errors.New("the answer does not echo our request")

// ntpAnswer checks a server's answer to the request sent at t1 (local clock)
// with transmit timestamp nonce, received at t4, and computes the offset.
func ntpAnswer(b []byte, nonce uint64, t1, t4 time.Time) (ntpSample, error) {
	if len(b) < 48 {
		return ntpSample{}, fmt.Errorf("short answer (%d bytes)", len(b))
	}
	if binary.BigEndian.Uint64(b[24:32]) != nonce {
		return ntpSample{}, errNotOurs
	}
	li, mode, stratum := b[0]>>6, b[0]&7, b[1]
	switch {
	case mode != 4:
		return ntpSample{}, fmt.Errorf("answer in mode %d, not 4 (server)", mode)
	case stratum == 0:
		return ntpSample{}, fmt.Errorf("kiss-o'-death %q: the server refuses us", strings.TrimRight(string(b[12:16]), "\x00"))
	case stratum > 15:
		return ntpSample{}, fmt.Errorf("stratum %d: the server is not synchronised", stratum)
	case li == 3:
		return ntpSample{}, errors.New("leap indicator 3: the server's clock is not synchronised")
	}
	rx, tx := binary.BigEndian.Uint64(b[32:40]), binary.BigEndian.Uint64(b[40:48])
	if rx == 0 || tx == 0 {
		return ntpSample{}, errors.New("the answer has no receive or transmit time")
	}
	t2, t3 := ntpTime(rx), ntpTime(tx)
	// RFC 4330 section 5: offset ((T2 - T1) + (T3 - T4)) / 2, delay (T4 - T1) - (T3 - T2).
	// T4 - T1 on the monotonic clock: the wall clock may be stepped meanwhile.
	rtt := t4.Sub(t1)
	t1w, t4w := t1.Round(0), t1.Round(0).Add(rtt)
	offset := (t2.Sub(t1w) + t3.Sub(t4w)) / 2
	delay := rtt - t3.Sub(t2)
	if delay < 0 {
		delay = 0
	}
	return ntpSample{offset: offset, delay: delay}, nil
}

// bestSample asks every server (up to ntpAttempts times each, until it
// answers) and returns the answer with the shortest round trip; the error
// names every server that did not answer.
func bestSample(servers []string) (ntpSample, error) {
	var best *ntpSample
	var problems []string
	for _, srv := range servers {
		var err error
		for i := 0; i < ntpAttempts; i++ {
			var s ntpSample
			if s, err = ntpQuery(srv, ntpTimeout); err == nil {
				if best == nil || s.delay < best.delay {
					best = &s
				}
				break
			}
		}
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", srv, err))
		}
	}
	if best == nil {
		return ntpSample{}, errors.New(strings.Join(problems, "; "))
	}
	return *best, nil
}

// clockSync is what happened at a synchronisation, for the console.
type clockSync struct {
	ok     bool
	at     time.Time
	sample ntpSample
}

// syncClock sets the clock from the servers (stepping a large offset,
// slewing a small one), then the RTC, and says so on the console; without
// servers or answers it says that the clock is unsynchronised.
func syncClock(servers []string) clockSync {
	if len(servers) == 0 {
		log.Printf("clock: no NTP server (kernel flag k4s.ntp=<host>[:<port>],...): the clock is unsynchronised, "+
			"it is the RTC's (%s); TLS with other machines fails if it is off by more than the certificates allow",
			time.Now().UTC().Format(time.RFC3339))
		return clockSync{}
	}
	s, err := bestSample(servers)
	if err != nil {
		log.Printf("clock unsynchronised (now %s): no NTP answer: %v", time.Now().UTC().Format(time.RFC3339), err)
		return clockSync{}
	}
	if err := adjustClock(s.offset); err != nil {
		log.Printf("clock unsynchronised: %s says the clock is off by %s, but setting it failed: %v", s.server, s.offset, err)
		return clockSync{sample: s}
	}
	how := "slewed"
	if abs(s.offset) > stepThreshold {
		how = "stepped"
	}
	log.Printf("clock synchronised with %s: %s by %s (round trip %s); now %s",
		s.server, how, s.offset.Round(time.Millisecond), s.delay.Round(time.Millisecond), time.Now().UTC().Format(time.RFC3339))
	if err := writeRTC(time.Now()); err != nil {
		log.Printf("RTC not set: %v", err)
	}
	return clockSync{ok: true, at: time.Now(), sample: s}
}

// keepClockSynced synchronises every ntpInterval, saying on the console when
// the clock becomes unsynchronised (and once an hour while it stays so), and
// when it was found off by more than a second.
func keepClockSynced(servers []string, last clockSync) {
	if len(servers) == 0 {
		return
	}
	var reported time.Time
	for {
		time.Sleep(ntpInterval)
		s, err := bestSample(servers)
		if err == nil {
			err = adjustClock(s.offset)
		}
		if err != nil {
			if time.Since(reported) >= time.Hour {
				since := "since boot"
				if last.ok {
					since = fmt.Sprintf("since %s (then off by %s)", last.at.UTC().Format(time.RFC3339), last.sample.offset.Round(time.Millisecond))
				}
				log.Printf("clock unsynchronised %s: %v", since, err)
				reported = time.Now()
			}
			continue
		}
		if abs(s.offset) > time.Second || !last.ok {
			log.Printf("clock synchronised with %s: it was off by %s", s.server, s.offset.Round(time.Millisecond))
		}
		if err := writeRTC(time.Now()); err != nil && last.ok {
			log.Printf("RTC not set: %v", err)
		}
		last, reported = clockSync{ok: true, at: time.Now(), sample: s}, time.Time{}
	}
}

func abs(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// adjustClock corrects the system clock by offset: set at once when larger
// than stepThreshold, else slewed by the kernel (adjtimex
// ADJ_OFFSET_SINGLESHOT: about 0.5 ms per second, time never goes back).
func adjustClock(offset time.Duration) error {
	if abs(offset) > stepThreshold {
		ts := unix.NsecToTimespec(time.Now().Add(offset).UnixNano())
		return unix.ClockSettime(unix.CLOCK_REALTIME, &ts)
	}
	tx := unix.Timex{Modes: unix.ADJ_OFFSET_SINGLESHOT, Offset: offset.Microseconds()}
	_, err := unix.Adjtimex(&tx)
	return err
}
