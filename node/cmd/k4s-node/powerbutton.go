package main

// The power button: the kernel's ACPI button driver (module button) reports a press
// of the machine's power button (QEMU: `system_powerdown` on its monitor or QMP) as a
// KEY_POWER key event of an input device, which evdev (module evdev) makes readable
// at /dev/input/event<N>. Without acpid or logind, k4s-node reads those events itself.

import (
	"encoding/binary"
	"fmt"
	"io"
	"log"
	"math/bits"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

const (
	evKey    = 0x01
	keyPower = 116 // KEY_POWER, linux/input-event-codes.h
	// inputEventSize is struct input_event on a 64-bit kernel: a timeval (two 64-bit
	// words), type and code (16 bits each) and value (32 bits).
	inputEventSize = 24
)

// hasKey reads an input device's key capability bitmap (sysfs
// capabilities/key: hexadecimal words, most significant first) and tells whether
// it has key code.
func hasKey(capabilities string, code int) bool {
	words := strings.Fields(capabilities)
	idx := code / bits.UintSize
	if idx >= len(words) {
		return false
	}
	w, err := strconv.ParseUint(words[len(words)-1-idx], 16, bits.UintSize)
	if err != nil {
		return false
	}
	return w&(1<<(code%bits.UintSize)) != 0
}

// isPowerPress tells whether an input_event is a press of KEY_POWER.
func isPowerPress(ev []byte) bool {
	if len(ev) != inputEventSize {
		return false
	}
	typ := binary.NativeEndian.Uint16(ev[16:])
	code := binary.NativeEndian.Uint16(ev[18:])
	value := int32(binary.NativeEndian.Uint32(ev[20:]))
	return typ == evKey && code == keyPower && value == 1
}

// powerButtons lists the event devices that have KEY_POWER.
func powerButtons() []string {
	var out []string
	devs, _ := filepath.Glob("/sys/class/input/event*")
	for _, d := range devs {
		capabilities, err := os.ReadFile(filepath.Join(d, "device", "capabilities", "key"))
		if err != nil || !hasKey(string(capabilities), keyPower) {
			continue
		}
		name, _ := os.ReadFile(filepath.Join(d, "device", "name"))
		dev := "/dev/input/" + filepath.Base(d)
		log.Printf("power button: %s (%s)", dev, strings.TrimSpace(string(name)))
		out = append(out, dev)
	}
	return out
}

// watchPowerButton sends a shutdown request when a power button is pressed. The
// devices appear when the modules button and evdev are loaded (setupSystem): it looks
// for them for a minute.
func watchPowerButton(reqs chan<- string) {
	var devs []string
	for i := 0; i < 12 && len(devs) == 0; i++ {
		if i > 0 {
			time.Sleep(5 * time.Second)
		}
		devs = powerButtons()
	}
	if len(devs) == 0 {
		log.Printf("no power button (input device with KEY_POWER): shut down with SIGTERM to k4s-node; " +
			"an image needs the kernel modules button and evdev (distros/command_groups.py NODE_KERNEL_MODULES)")
		return
	}
	for _, dev := range devs {
		go func() {
			f, err := os.Open(dev)
			if err != nil {
				log.Printf("power button %s: %v", dev, err)
				return
			}
			defer f.Close()
			ev := make([]byte, inputEventSize)
			for {
				if _, err := io.ReadFull(f, ev); err != nil {
					log.Printf("power button %s: %v", dev, err)
					return
				}
				if isPowerPress(ev) {
					reqs <- fmt.Sprintf("power button (%s)", dev)
				}
			}
		}()
	}
}
