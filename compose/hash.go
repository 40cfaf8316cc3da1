package compose

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	"github.com/compose-spec/compose-go/v2/types"
)

// The config hashes compose puts on what it creates, computed the way
// compose computes them: the SHA-256 of the JSON encoding of compose-go's
// types, less the fields that do not make a container different. The JSON
// depends on compose-go's struct layout (field order), so berth uses the
// compose-go release of the compose CLI it reproduces (ComposeVersion; the
// golden test checks the hashes against that CLI's `config --hash`).

// ServiceHash is com.docker.compose.config-hash of a service's containers.
func ServiceHash(s types.ServiceConfig) (string, error) {
	s.Build = nil
	s.PullPolicy = ""
	s.Scale = nil
	if s.Deploy != nil {
		d := *s.Deploy // do not change the caller's deploy section
		d.Replicas = nil
		s.Deploy = &d
	}
	s.DependsOn = nil
	s.Profiles = nil
	return hashJSON(s)
}

// NetworkHash is com.docker.compose.config-hash of a network.
func NetworkHash(n types.NetworkConfig) (string, error) {
	return hashJSON(n)
}

// VolumeHash is com.docker.compose.config-hash of a volume.
func VolumeHash(v types.VolumeConfig) (string, error) {
	if v.Driver == "" {
		v.Driver = "local"
	}
	return hashJSON(v)
}

func hashJSON(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}
