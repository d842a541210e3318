package main

import "testing"

func TestMemoryReservation(t *testing.T) {
	for _, tc := range []struct {
		total, used, system, kube int64
	}{
		{1024 * mib, 230 * mib, 294 * mib, 384 * mib},  // 1 GiB: 346 MiB left for pods
		{4096 * mib, 230 * mib, 294 * mib, 1024 * mib}, // a quarter of RAM
		{512 * mib, 230 * mib, 294 * mib, 115 * mib},   // kube shrinks: pods keep a fifth
		{256 * mib, 230 * mib, 204 * mib, 0},
	} {
		system, kube := memoryReservation(tc.total, tc.used)
		if system != tc.system || kube != tc.kube {
			t.Errorf("memoryReservation(%d MiB, %d MiB) = %d, %d MiB; want %d, %d", tc.total/mib, tc.used/mib, system/mib, kube/mib, tc.system/mib, tc.kube/mib)
		}
		if left := tc.total - system - kube; left < tc.total/5-mib {
			t.Errorf("%d MiB: pods get %d MiB", tc.total/mib, left/mib)
		}
	}
}
