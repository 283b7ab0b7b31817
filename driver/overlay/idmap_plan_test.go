package overlay

import (
	"slices"
	"testing"

	"github.com/stowage/stowage/internal/idmap"
)

func TestPlanIDMappedLowers(t *testing.T) {
	homes := []string{"/g/overlay", "/i/overlay", "/a/overlay"}
	for _, tc := range []struct {
		name   string
		lowers []string
		skip   string
		want   idmapPlan
	}{
		{
			name: "no lowers",
			want: idmapPlan{},
		},
		{
			name:   "lowers of one home share one idmapped mount",
			lowers: []string{"/g/overlay/b/diff", "/g/overlay/b/diff1", "/g/overlay/a/diff"},
			want: idmapPlan{
				Roots:  []string{"/g/overlay"},
				Lowers: []string{"/m/0/b/diff", "/m/0/b/diff1", "/m/0/a/diff"},
			},
		},
		{
			name:   "one mount per home, in the order first needed",
			lowers: []string{"/i/overlay/c/diff", "/g/overlay/b/diff", "/a/overlay/a/diff", "/i/overlay/z/diff"},
			want: idmapPlan{
				Roots:  []string{"/i/overlay", "/g/overlay", "/a/overlay"},
				Lowers: []string{"/m/0/c/diff", "/m/1/b/diff", "/m/2/a/diff", "/m/0/z/diff"},
			},
		},
		{
			name:   "the layer's own diff (top lower of a read-only mount) is not mapped",
			lowers: []string{"/g/overlay/self/diff", "/g/overlay/self/diff1", "/g/overlay/p/diff"},
			skip:   "/g/overlay/self/diff",
			want: idmapPlan{
				Roots:  []string{"/g/overlay"},
				Lowers: []string{"/g/overlay/self/diff", "/m/0/self/diff1", "/m/0/p/diff"},
			},
		},
		{
			name:   "a path through l/ maps the directory holding l, as v1.43",
			lowers: []string{"/x/home/l/ABC", "/elsewhere/dir/diff"},
			want: idmapPlan{
				Roots:  []string{"/x/home", "/elsewhere/dir"},
				Lowers: []string{"/m/0/l/ABC", "/m/1/diff"},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := planIDMappedLowers("/m", homes, tc.lowers, tc.skip)
			if !slices.Equal(got.Roots, tc.want.Roots) || !slices.Equal(got.Lowers, tc.want.Lowers) {
				t.Errorf("planIDMappedLowers(%v) =\n  %+v\nwant\n  %+v", tc.lowers, got, tc.want)
			}
		})
	}
}

func TestRotateDiffs(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want [][2]string
	}{
		{0, [][2]string{}},
		{1, [][2]string{{"diff", "diff1"}}},
		{3, [][2]string{{"diff2", "diff3"}, {"diff1", "diff2"}, {"diff", "diff1"}}},
	} {
		got := rotateDiffs(tc.n)
		if !slices.Equal(got, tc.want) {
			t.Errorf("rotateDiffs(%d) = %v, want %v", tc.n, got, tc.want)
		}
	}
	if numberedDiff(0) != "diff" || numberedDiff(12) != "diff12" {
		t.Errorf("numberedDiff: %q %q", numberedDiff(0), numberedDiff(12))
	}
}

func TestUsernsMapLines(t *testing.T) {
	for _, tc := range []struct {
		maps []idmap.IDMap
		want string
	}{
		{nil, "0 0 4294967295\n"},
		{[]idmap.IDMap{{ContainerID: 0, HostID: 3000, Size: 1}, {ContainerID: 1, HostID: 100000, Size: 65536}}, "0 3000 1\n1 100000 65536\n"},
	} {
		if got := usernsMapLines(tc.maps); got != tc.want {
			t.Errorf("usernsMapLines(%v) = %q, want %q", tc.maps, got, tc.want)
		}
	}
}
