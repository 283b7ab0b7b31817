// Package testutil holds helpers shared by the tests of several packages:
// a test binary that re-executes itself as a child process (a lock or
// temp-dir holder in another process) and talks to it by lines.
//
// It sits at the bottom of the import levels (internal/deps) and imports
// no stowage package.
package testutil
