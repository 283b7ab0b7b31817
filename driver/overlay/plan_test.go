package overlay

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/stowage/stowage/driver"
)

func TestPlanMount(t *testing.T) {
	base := planInput{Diff: "/h/x/diff", Work: "/h/x/work", Empty: "/h/x/empty"}
	with := func(f func(*planInput)) planInput { in := base; f(&in); return in }
	lowers := func(n int) []string {
		var out []string
		for i := range n {
			out = append(out, fmt.Sprintf("/h/l%d/diff", i))
		}
		return out
	}
	for _, tc := range []struct {
		name       string
		in         planInput
		wantLowers []string
		wantUpper  string
		wantData   []string
		wantAttrs  uint64
		wantErr    error
	}{
		{name: "base rw", in: base, wantLowers: []string{"/h/x/empty"}, wantUpper: "/h/x/diff", wantData: []string{"index=off"}},
		{name: "child rw", in: with(func(in *planInput) { in.Lowers = []string{"/h/p/diff", "/h/g/diff"} }),
			wantLowers: []string{"/h/p/diff", "/h/g/diff"}, wantUpper: "/h/x/diff", wantData: []string{"index=off"}},
		{name: "child ro", in: with(func(in *planInput) { in.Lowers = []string{"/h/p/diff"}; in.CallerOptions = []string{"ro"} }),
			wantLowers: []string{"/h/x/diff", "/h/p/diff"}, wantData: []string{"index=off"}, wantAttrs: 0x1},
		{name: "base ro uses empty", in: with(func(in *planInput) { in.CallerOptions = []string{"ro"} }),
			wantLowers: []string{"/h/x/diff", "/h/x/empty"}, wantData: []string{"index=off"}, wantAttrs: 0x1},
		{name: "read-only store", in: with(func(in *planInput) { in.ReadOnlyStore = true }),
			wantLowers: []string{"/h/x/diff", "/h/x/empty"}, wantData: []string{"index=off"}, wantAttrs: 0x1},
		{name: "mountopt used without caller options", in: with(func(in *planInput) { in.MountOpt = "nodev,nosuid" }),
			wantLowers: []string{"/h/x/empty"}, wantUpper: "/h/x/diff", wantData: []string{"index=off"}, wantAttrs: 0x6},
		{name: "caller options win over mountopt", in: with(func(in *planInput) { in.MountOpt = "nodev"; in.CallerOptions = []string{"noexec"} }),
			wantLowers: []string{"/h/x/empty"}, wantUpper: "/h/x/diff", wantData: []string{"index=off"}, wantAttrs: 0x8},
		{name: "metacopy stripped without kernel support", in: with(func(in *planInput) { in.MountOpt = "nodev,metacopy=on" }),
			wantLowers: []string{"/h/x/empty"}, wantUpper: "/h/x/diff", wantData: []string{"index=off"}, wantAttrs: 0x4},
		{name: "metacopy kept and added to caller options", in: with(func(in *planInput) {
			in.MountOpt = "metacopy=on"
			in.Metacopy = true
			in.CallerOptions = []string{"nodev"}
		}),
			wantLowers: []string{"/h/x/empty"}, wantUpper: "/h/x/diff", wantData: []string{"metacopy=on", "index=off"}, wantAttrs: 0x4},
		{name: "caller index kept", in: with(func(in *planInput) { in.CallerOptions = []string{"index=on"} }),
			wantLowers: []string{"/h/x/empty"}, wantUpper: "/h/x/diff", wantData: []string{"index=on"}},
		{name: "rootless userxattr", in: with(func(in *planInput) { in.Rootless = true }),
			wantLowers: []string{"/h/x/empty"}, wantUpper: "/h/x/diff", wantData: []string{"index=off", "userxattr"}},
		{name: "label", in: with(func(in *planInput) { in.Label = "system_u:object_r:container_file_t:s0" }),
			wantLowers: []string{"/h/x/empty"}, wantUpper: "/h/x/diff",
			wantData: []string{"index=off", `context="system_u:object_r:container_file_t:s0"`}},
		{name: "rw clears ro", in: with(func(in *planInput) { in.CallerOptions = []string{"nodev", "dev"} }),
			wantLowers: []string{"/h/x/empty"}, wantUpper: "/h/x/diff", wantData: []string{"index=off"}},
		{name: "500 lowers rw", in: with(func(in *planInput) { in.Lowers = lowers(500) }),
			wantLowers: lowers(500), wantUpper: "/h/x/diff", wantData: []string{"index=off"}},
		{name: "500 lowers ro is 501", in: with(func(in *planInput) { in.Lowers = lowers(500); in.CallerOptions = []string{"ro"} }), wantErr: ErrMaxDepth},
		{name: "501 lowers", in: with(func(in *planInput) { in.Lowers = lowers(501) }), wantErr: ErrMaxDepth},
		{name: "volatile when asked for and supported", in: with(func(in *planInput) { in.Volatile, in.VolatileOK = true, true }),
			wantLowers: []string{"/h/x/empty"}, wantUpper: "/h/x/diff", wantData: []string{"index=off", "volatile"}},
		{name: "volatile dropped without kernel support", in: with(func(in *planInput) { in.Volatile = true }),
			wantLowers: []string{"/h/x/empty"}, wantUpper: "/h/x/diff", wantData: []string{"index=off"}},
		{name: "volatile not for a read-only mount", in: with(func(in *planInput) {
			in.Volatile, in.VolatileOK = true, true
			in.CallerOptions = []string{"ro"}
		}),
			wantLowers: []string{"/h/x/diff", "/h/x/empty"}, wantData: []string{"index=off"}, wantAttrs: 0x1},
		{name: "volatile given by the caller once", in: with(func(in *planInput) {
			in.Volatile, in.VolatileOK = true, true
			in.CallerOptions = []string{"volatile"}
		}),
			wantLowers: []string{"/h/x/empty"}, wantUpper: "/h/x/diff", wantData: []string{"volatile", "index=off"}},
		{name: "upperdir refused", in: with(func(in *planInput) { in.CallerOptions = []string{"upperdir=/tmp"} }), wantErr: driver.ErrBadMountOpt},
		{name: "lowerdir in mountopt refused", in: with(func(in *planInput) { in.MountOpt = "lowerdir=/" }), wantErr: driver.ErrBadMountOpt},
		{name: "unknown option refused", in: with(func(in *planInput) { in.CallerOptions = []string{"bogus"} }), wantErr: driver.ErrBadMountOpt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := planMount(tc.in)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(p.Lowers, tc.wantLowers) {
				t.Errorf("lowers %v, want %v", p.Lowers, tc.wantLowers)
			}
			if p.Upper != tc.wantUpper || (p.Upper != "") != (p.Work != "") {
				t.Errorf("upper %q work %q, want upper %q", p.Upper, p.Work, tc.wantUpper)
			}
			if !slices.Equal(p.Data, tc.wantData) {
				t.Errorf("data %q, want %q", p.Data, tc.wantData)
			}
			if p.Attrs != tc.wantAttrs {
				t.Errorf("attrs %#x, want %#x", p.Attrs, tc.wantAttrs)
			}
		})
	}
}

func TestOptionString(t *testing.T) {
	rw := mountPlan{Lowers: []string{"/a", "/b"}, Upper: "/u", Work: "/w", Data: []string{"index=off"}}
	if got, want := rw.optionString(), "lowerdir=/a:/b,upperdir=/u,workdir=/w,index=off"; got != want {
		t.Errorf("rw: %q, want %q", got, want)
	}
	ro := mountPlan{Lowers: []string{"/d", "/a"}, Data: []string{"index=off"}}
	if got, want := ro.optionString(), "lowerdir=/d:/a,index=off"; got != want {
		t.Errorf("ro: %q, want %q", got, want)
	}
}
