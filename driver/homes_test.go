package driver

import (
	"reflect"
	"testing"
)

func TestHomes(t *testing.T) {
	h := NewHomes(Options{Root: "/g/vfs", ImageStore: "/i", ImageStores: []string{"/a1", "/a2"}}, "vfs")
	want := Homes{Home: "/g/vfs", ImageStore: "/i/vfs", ImageStores: []string{"/a1/vfs", "/a2/vfs"}}
	if !reflect.DeepEqual(h, want) {
		t.Fatalf("NewHomes = %+v, want %+v", h, want)
	}
	if got := h.BaseFor(false); got != "/i/vfs" {
		t.Errorf("BaseFor(image) = %q", got)
	}
	if got := h.BaseFor(true); got != "/g/vfs" {
		t.Errorf("BaseFor(container) = %q", got)
	}
	if got := h.Search(); !reflect.DeepEqual(got, []string{"/g/vfs", "/i/vfs", "/a1/vfs", "/a2/vfs"}) {
		t.Errorf("Search = %q", got)
	}
	// Search must not write into a slice Writable handed out.
	w := h.Writable()
	_ = h.Search()
	if !reflect.DeepEqual(w, []string{"/g/vfs", "/i/vfs"}) {
		t.Errorf("Writable = %q", w)
	}
	plain := NewHomes(Options{Root: "/g/overlay"}, "overlay")
	if got := plain.BaseFor(false); got != "/g/overlay" {
		t.Errorf("BaseFor without split store = %q", got)
	}
	if got := plain.Writable(); !reflect.DeepEqual(got, []string{"/g/overlay"}) {
		t.Errorf("Writable without split store = %q", got)
	}
}
