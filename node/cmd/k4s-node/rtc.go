package main

import (
	"fmt"
	"log"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// The real-time clock (battery-backed, in UTC as QEMU's default `-rtc
// base=utc` and Linux expect): the kernel sets the system clock from it at
// boot when built with CONFIG_RTC_HCTOSYS and the RTC driver built in
// (/sys/class/rtc/rtc0/hctosys is then 1); otherwise k4s-node does, before
// anything makes certificates. After each NTP synchronisation the RTC is set
// (ntp.go), so that the next boot starts close to the right time.

const rtcDevice = "/dev/rtc0"

// clockFromRTC sets the system clock from the RTC unless the kernel did, and
// says where the boot time came from.
func clockFromRTC() {
	if hctosys, err := os.ReadFile("/sys/class/rtc/rtc0/hctosys"); err == nil && strings.TrimSpace(string(hctosys)) == "1" {
		log.Printf("clock: %s, from the RTC (set by the kernel)", time.Now().UTC().Format(time.RFC3339))
		return
	}
	t, err := readRTC()
	if err != nil {
		log.Printf("clock: %s, not from an RTC (%v)", time.Now().UTC().Format(time.RFC3339), err)
		return
	}
	ts := unix.NsecToTimespec(t.UnixNano())
	if err := unix.ClockSettime(unix.CLOCK_REALTIME, &ts); err != nil {
		log.Printf("clock: setting it from the RTC (%s): %v", t.Format(time.RFC3339), err)
		return
	}
	log.Printf("clock: %s, from the RTC (set by k4s-node: the kernel did not)", t.Format(time.RFC3339))
}

func readRTC() (time.Time, error) {
	f, err := os.Open(rtcDevice)
	if err != nil {
		return time.Time{}, err
	}
	defer f.Close()
	rt, err := unix.IoctlGetRTCTime(int(f.Fd()))
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: RTC_RD_TIME: %w", rtcDevice, err)
	}
	return fromRTCTime(rt)
}

// writeRTC sets the RTC to t (UTC).
func writeRTC(t time.Time) error {
	f, err := os.OpenFile(rtcDevice, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.IoctlSetRTCTime(int(f.Fd()), toRTCTime(t)); err != nil {
		return fmt.Errorf("%s: RTC_SET_TIME: %w", rtcDevice, err)
	}
	return nil
}

// fromRTCTime is the time an RTC holds (struct rtc_time: years since 1900,
// months from 0), refusing what no clock reads.
func fromRTCTime(rt *unix.RTCTime) (time.Time, error) {
	if rt.Mon < 0 || rt.Mon > 11 || rt.Mday < 1 || rt.Mday > 31 || rt.Hour < 0 || rt.Hour > 23 ||
		rt.Min < 0 || rt.Min > 59 || rt.Sec < 0 || rt.Sec > 60 || rt.Year < 70 {
		return time.Time{}, fmt.Errorf("%s holds no valid time (%+v)", rtcDevice, *rt)
	}
	return time.Date(int(rt.Year)+1900, time.Month(rt.Mon+1), int(rt.Mday), int(rt.Hour), int(rt.Min), int(rt.Sec), 0, time.UTC), nil
}

func toRTCTime(t time.Time) *unix.RTCTime {
	t = t.UTC()
	return &unix.RTCTime{
		Sec: int32(t.Second()), Min: int32(t.Minute()), Hour: int32(t.Hour()),
		Mday: int32(t.Day()), Mon: int32(t.Month()) - 1, Year: int32(t.Year() - 1900),
		Wday: int32(t.Weekday()), Yday: int32(t.YearDay() - 1),
	}
}
