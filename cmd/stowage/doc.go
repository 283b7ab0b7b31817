// Command stowage is a command line tool for a containers/storage store,
// flag-, output- and exit-status-compatible with the containers-storage
// tool (see ../shared/spec/cli.md).
package main
