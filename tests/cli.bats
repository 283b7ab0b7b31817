#!/usr/bin/env bats
# Global flag handling, argument counts, exit codes, status and version.

load helpers

@test "status: first three lines, on stderr" {
	run -0 storage --debug=false status
	[ "${lines[0]}" = "Root: $TESTDIR/root" ]
	[ "${lines[1]}" = "Run Root: $TESTDIR/runroot" ]
	[ "${lines[2]}" = "Driver Name: $STORAGE_DRIVER" ]
	[[ "${lines[3]}" == "Driver Options: "* ]]
	# plain status goes to stderr, nothing to stdout
	out=$(storage --debug=false status 2>/dev/null)
	[ "$out" = "" ]
	# the awk idiom of apply-diff.bats works
	[ "$(storage --debug=false status 2>&1 | awk '/^Root:/{print $2}')" = "$TESTDIR/root" ]
}

@test "status: JSON pairs on stdout" {
	run -0 --separate-stderr storage --debug=false status --json
	[ "$(jq -r '.[0][0]' <<<"$output")" = Root ]
	[ "$(jq -r '.[0][1]' <<<"$output")" = "$TESTDIR/root" ]
	[ "$(jq -r '.[1][1]' <<<"$output")" = "$TESTDIR/runroot" ]
	[ "$(jq -r '.[2][1]' <<<"$output")" = "$STORAGE_DRIVER" ]
}

@test "version: prints a version on stderr" {
	skip_if_143 "version prints nothing"
	run -0 --separate-stderr storage --debug=false version
	[ "$output" = "" ]
	[[ "$stderr" == "Version: "?* ]]
	run -0 --separate-stderr storage --debug=false version --json
	[ "$(jq -r '.[0][0]' <<<"$output")" = Version ]
}

@test "global flags after the command name override earlier ones" {
	other="$TESTDIR/other"
	run -0 storage --debug=false create-layer --graph "$other/root" --run "$other/run"
	layer=${lines[0]}
	[ -d "$other/root/${STORAGE_DRIVER}-layers" ]
	run -0 storage --debug=false layers
	[ "$output" = "" ]
	run -0 storage --debug=false layers --graph "$other/root" --run "$other/run"
	[ "$output" = "$layer" ]
	"$STORAGE_BINARY" --graph "$other/root" --run "$other/run" --storage-driver "$STORAGE_DRIVER" wipe
	"$STORAGE_BINARY" --graph "$other/root" --run "$other/run" --storage-driver "$STORAGE_DRIVER" shutdown
}

@test "--debug=false gives clean output; --debug logs to stderr only" {
	run -0 --separate-stderr storage create-layer
	[[ "$output" =~ ^[0-9a-f]{64}$ ]]
	run -0 storage --debug=false --debug=false layers
	[ "$output" = "${lines[0]}" ]
	run -0 --separate-stderr storage --debug=false layers
	[ "$stderr" = "" ]
}

@test "boolean flag forms and short flags" {
	layer=$(new_layer -n short)
	run -0 storage -D=false layer --json=true short
	[ "$(jq -r '.[0].id' <<<"$output")" = "$layer" ]
	run -0 storage --debug=false layer --json=false short
	[ "${lines[0]}" = "ID: $layer" ]
	run -0 storage --debug=false layer -j short
	[ "$(jq -r '.[0].id' <<<"$output")" = "$layer" ]
	run -0 storage --debug=false layer "-j=1" short
	[ "$(jq -r '.[0].id' <<<"$output")" = "$layer" ]
	run -0 storage --debug=false create-layer --name="quoted-name"
	run -0 storage --debug=false get-names quoted-name
	[ "$output" = quoted-name ]
}

@test "exit codes: unknown command 1, unknown flag 125, missing flag value 125, arity 1" {
	run -1 storage --debug=false nosuchcommand
	[[ "$output" == *"nosuchcommand: unrecognized command."* ]]
	run -125 storage --debug=false layers --bogus
	[[ "$output" == *"flag provided but not defined: --bogus"* ]]
	run -125 storage --debug=false create-layer -n
	[[ "$output" == *"flag needs an argument"* ]]
	run -125 storage --debug=false layers --help
	[[ "$output" == *"Usage: "*"layers"* ]]
	run -1 storage --debug=false delete
	[[ "$output" == *"delete: more arguments required."* ]]
	run -1 storage --debug=false create-layer a b
	[[ "$output" == *"create-layer: too many arguments ([a b])."* ]]
	run -1 "$STORAGE_BINARY"
	run -1 "$STORAGE_BINARY" --bogus-global
	[[ "$output" == *"flag provided but not defined: --bogus-global"* ]]
}

@test "command aliases" {
	run -0 storage --debug=false createlayer
	layer=${lines[0]}
	run -0 storage --debug=false createimage "$layer"
	image=${lines[0]}
	run -0 storage --debug=false createcontainer "$image"
	container=${lines[0]}
	run -0 storage --debug=false setnames -n aliased "$image"
	run -0 storage --debug=false getnames "$image"
	[ "$output" = aliased ]
	run -0 storage --debug=false addnames -n more "$image"
	run -0 storage --debug=false setmetadata -m m "$container"
	echo x | storage --debug=false setimagedata "$image" key
	run -0 storage --debug=false listimagedata "$image"
	[ "$output" = key ]
	run -0 storage --debug=false getimagedata "$image" key
	[ "$output" = x ]
	run -0 storage --debug=false deletecontainer "$container"
	run -0 storage --debug=false deleteimage "$image"
	layer2=$(new_layer)
	run -0 storage --debug=false deletelayer "$layer2"
	run -0 storage --debug=false importlayer </dev/null
}

@test "configuration file: CONTAINERS_STORAGE_CONF is honoured without flags" {
	conf="$TESTDIR/storage.conf"
	cat >"$conf" <<-EOC
	[storage]
	driver = "$STORAGE_DRIVER"
	graphroot = "$TESTDIR/root"
	runroot = "$TESTDIR/runroot"
	EOC
	layer=$(new_layer)
	run -0 env CONTAINERS_STORAGE_CONF="$conf" "$STORAGE_BINARY" layers
	[ "$output" = "$layer" ]
	run -0 env CONTAINERS_STORAGE_CONF="$conf" "$STORAGE_BINARY" status
	[ "${lines[0]}" = "Root: $TESTDIR/root" ]
}
