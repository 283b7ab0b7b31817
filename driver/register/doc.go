// Package register owns the mapping from driver names to constructors.
// Importing a driver package has no side effects; the constructors are
// listed here, so this is the only package that imports every driver.
package register
