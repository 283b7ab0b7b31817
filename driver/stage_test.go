package driver

import (
	"testing"

	"github.com/stowage/stowage/archive"
	"github.com/stowage/stowage/internal/idmap"
)

func TestStageMapsAndUnpackOptions(t *testing.T) {
	applyMap := []idmap.IDMap{{ContainerID: 0, HostID: 1000, Size: 10}}
	createMap := []idmap.IDMap{{ContainerID: 0, HostID: 2000, Size: 10}}
	opts := ApplyOptions{UIDMap: applyMap, GIDMap: applyMap}
	if u, g := StageMaps(opts, CreateOptions{}); !idmap.Equal(u, applyMap) || !idmap.Equal(g, applyMap) {
		t.Errorf("without create maps: got %v %v, want the apply maps", u, g)
	}
	if u, g := StageMaps(opts, CreateOptions{UIDMap: createMap}); !idmap.Equal(u, createMap) || len(g) != 0 {
		t.Errorf("with a create UID map: got %v %v, want create's maps", u, g)
	}
	u := UnpackOptionsFor(opts, archive.WhiteoutOverlay, "trusted.overlay.opaque", false)
	if u.Whiteouts != archive.WhiteoutOverlay || u.OpaqueXattr != "trusted.overlay.opaque" || u.IgnoreChownErrors || !idmap.Equal(u.UIDMap, applyMap) {
		t.Errorf("overlay unpack options: %+v", u)
	}
	if u := UnpackOptionsFor(opts, archive.WhiteoutDelete, "", true); !u.IgnoreChownErrors || u.Whiteouts != archive.WhiteoutDelete {
		t.Errorf("driver-level ignore_chown_errors lost: %+v", u)
	}
	opts.IgnoreChownErrors = true
	if u := UnpackOptionsFor(opts, archive.WhiteoutDelete, "", false); !u.IgnoreChownErrors {
		t.Errorf("apply-level IgnoreChownErrors lost: %+v", u)
	}
}
