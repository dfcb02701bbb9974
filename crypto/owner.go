package crypto

import (
	"errors"
	"fmt"
	"strconv"
)

// MaxPosition bounds Owner.Position; the API allows far fewer resources, the
// bound only keeps the envelope decoder honest about hostile input.
const MaxPosition = 1<<31 - 1

// maxDeploymentIDLen bounds Owner.DeploymentID in the envelope.
const maxDeploymentIDLen = 256

// Owner binds a sealed secret to where it lives: a deployment and the position
// of the resource inside that deployment's resources list.
type Owner struct {
	DeploymentID string
	Position     int
}

// String renders the owner as the resource path used in logs and errors,
// e.g. "depl_x/resources/3".
func (o Owner) String() string {
	return o.DeploymentID + "/resources/" + strconv.Itoa(o.Position)
}

// Validate reports whether the owner can be written into a sealed envelope.
func (o Owner) Validate() error {
	switch {
	case o.DeploymentID == "":
		return errors.New("owner: deployment id is empty")
	case len(o.DeploymentID) > maxDeploymentIDLen:
		return fmt.Errorf("owner: deployment id is %d bytes, longer than %d", len(o.DeploymentID), maxDeploymentIDLen)
	case o.Position < 0 || o.Position > MaxPosition:
		return fmt.Errorf("owner %s: position %d out of range 0..%d", o.DeploymentID, o.Position, MaxPosition)
	}
	return nil
}
