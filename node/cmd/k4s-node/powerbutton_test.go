package main

import (
	"encoding/binary"
	"testing"
)

func TestHasKey(t *testing.T) {
	// /sys/class/input/event0/device/capabilities/key of QEMU's ACPI "Power Button"
	// (KEY_POWER = 116 = bit 52 of the second 64-bit word).
	if !hasKey("10000000000000 0\n", keyPower) {
		t.Error("the power button's capabilities lack KEY_POWER")
	}
	// A keyboard-like bitmap without bit 116.
	if hasKey("ffffffff 0", keyPower) || hasKey("", keyPower) || hasKey("zz 0", keyPower) {
		t.Error("KEY_POWER found where it is not")
	}
}

func event(typ, code uint16, value int32) []byte {
	ev := make([]byte, inputEventSize)
	binary.NativeEndian.PutUint16(ev[16:], typ)
	binary.NativeEndian.PutUint16(ev[18:], code)
	binary.NativeEndian.PutUint32(ev[20:], uint32(value))
	return ev
}

func TestIsPowerPress(t *testing.T) {
	if !isPowerPress(event(evKey, keyPower, 1)) {
		t.Error("a press of KEY_POWER was not seen")
	}
	for _, ev := range [][]byte{
		event(evKey, keyPower, 0), // release
		event(0, 0, 0),            // EV_SYN
		event(evKey, 30, 1),       // KEY_A
		event(evKey, keyPower, 1)[:16],
	} {
		if isPowerPress(ev) {
			t.Errorf("%v taken for a power button press", ev)
		}
	}
}
