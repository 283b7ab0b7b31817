// Package drivertest owns the conformance suite every storage driver runs:
// drivertest.Run(t, newDriver) with a fresh driver root per subtest.
//
// The suite looks at layers only through the driver.Driver interface (Get
// for the visible tree), so it holds for copying drivers (vfs) and
// mounting ones (overlay) alike. Checks of owners, device nodes and
// trusted xattrs run only as root.
package drivertest
