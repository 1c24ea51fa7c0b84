package main

import (
	"io"

	"meshconform/framework/posture"
)

// postureCmd is `meshconform posture`: framework/posture parses its own flags.
func postureCmd(args []string, stdout, stderr io.Writer) int {
	return posture.Main(args, stdout, stderr)
}
