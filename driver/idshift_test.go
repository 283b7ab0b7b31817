package driver

import (
	"errors"
	"testing"

	"github.com/stowage/stowage/internal/idmap"
)

func TestIDShiftRemap(t *testing.T) {
	u := []idmap.IDMap{{ContainerID: 0, HostID: 1000, Size: 100}}
	g := []idmap.IDMap{{ContainerID: 0, HostID: 2000, Size: 100}}
	ou, og := OverflowID("uid"), OverflowID("gid")
	for _, tc := range []struct {
		name       string
		shift      IDShift
		in, want   [2]int
		notMapped  bool
		isIdentity bool
	}{
		{name: "host to mapped", shift: IDShift{ToUID: u, ToGID: g}, in: [2]int{7, 8}, want: [2]int{1007, 2008}},
		{name: "mapped to host", shift: IDShift{FromUID: u, FromGID: g}, in: [2]int{1007, 2008}, want: [2]int{7, 8}},
		{name: "outside the target map overflows", shift: IDShift{ToUID: u, ToGID: g}, in: [2]int{500, 600}, want: [2]int{ou, og}},
		{name: "outside the source map", shift: IDShift{FromUID: u, FromGID: g}, in: [2]int{5, 2005}, notMapped: true},
		{name: "0:0 outside the source map stays root", shift: IDShift{FromUID: u, FromGID: g, ToUID: g, ToGID: u}, in: [2]int{0, 0}, want: [2]int{2000, 1000}},
		{name: "same maps", shift: IDShift{FromUID: u, FromGID: g, ToUID: u, ToGID: g}, in: [2]int{1001, 2001}, want: [2]int{1001, 2001}, isIdentity: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.shift.Identity(); got != tc.isIdentity {
				t.Errorf("Identity() = %v", got)
			}
			gu, gg, err := tc.shift.Remap(tc.in[0], tc.in[1])
			if tc.notMapped {
				if !errors.Is(err, idmap.ErrNotMapped) {
					t.Errorf("got %d:%d %v, want ErrNotMapped", gu, gg, err)
				}
				return
			}
			if err != nil || [2]int{gu, gg} != tc.want {
				t.Errorf("got %d:%d %v, want %v", gu, gg, err, tc.want)
			}
		})
	}
	opts := CreateOptions{UIDMap: u, ParentGIDMap: g}
	if s := ShiftFor(opts); !idmap.Equal(s.ToUID, u) || !idmap.Equal(s.FromGID, g) || s.FromUID != nil || s.ToGID != nil {
		t.Errorf("ShiftFor: %+v", s)
	}
}
