package idmap

import "testing"

func TestContiguous(t *testing.T) {
	for _, tc := range []struct {
		name string
		maps []IDMap
		want bool
	}{
		{"empty", nil, true},
		{"one range", []IDMap{{0, 1000, 100}}, true},
		{"two adjacent ranges", []IDMap{{0, 1000, 1}, {1, 1001, 99}}, true},
		{"adjacent ranges out of order", []IDMap{{1, 1001, 99}, {0, 1000, 1}}, true},
		{"host gap", []IDMap{{0, 1000, 1}, {1, 2001, 99}}, false},
		{"container gap", []IDMap{{0, 1000, 1}, {2, 1001, 99}}, false},
	} {
		if got := Contiguous(tc.maps); got != tc.want {
			t.Errorf("%s: Contiguous(%v) = %v, want %v", tc.name, tc.maps, got, tc.want)
		}
	}
}
