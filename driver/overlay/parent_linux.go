package overlay

// LayerParent returns the nearest lower layer recorded in the layer's
// lower-layers (or lower) file, "" for a base layer (driver.ParentRecorder).
func (d *Driver) LayerParent(id string) (string, bool, error) {
	ids, err := d.lowerIDs(id)
	if err != nil {
		return "", false, err
	}
	if len(ids) == 0 {
		return "", true, nil
	}
	return ids[0], true, nil
}
