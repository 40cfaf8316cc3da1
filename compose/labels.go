package compose

import (
	"strconv"
	"strings"
)

// The labels docker compose v2 puts on what it creates (compose's
// pkg/api/labels.go). berth reads them to know deployments, and writes the same
// ones in the native deploy path so that the compose CLI sees its own work.
const (
	LabelProject         = "com.docker.compose.project"
	LabelService         = "com.docker.compose.service"
	LabelContainerNumber = "com.docker.compose.container-number"
	LabelOneoff          = "com.docker.compose.oneoff" // "True" on `compose run` containers, else "False"
	LabelSlug            = "com.docker.compose.slug"   // one-off container identity
	LabelConfigHash      = "com.docker.compose.config-hash"
	LabelDependsOn       = "com.docker.compose.depends_on" // "svc:condition:restart,..."
	LabelWorkingDir      = "com.docker.compose.project.working_dir"
	LabelConfigFiles     = "com.docker.compose.project.config_files" // comma-separated absolute paths
	LabelEnvironmentFile = "com.docker.compose.project.environment_file"
	LabelVersion         = "com.docker.compose.version"
	LabelImage           = "com.docker.compose.image" // the image ID the container was created from
	LabelImageBuilder    = "com.docker.compose.image.builder"
	LabelReplace         = "com.docker.compose.replace" // set on a container created to replace another
	LabelNetwork         = "com.docker.compose.network" // on networks: the key in the compose file
	LabelVolume          = "com.docker.compose.volume"  // on volumes: the key in the compose file
)

// ComposeVersion is the compose release whose behaviour the native deploy
// path reproduces (labels, names, config hashes): the one tools/go.mod builds
// for the tests. The version label carries it.
const ComposeVersion = "2.40.3"

// ContainerKey says which deployment, service and replica a container belongs
// to, read from its labels.
type ContainerKey struct {
	Project string
	Service string
	Number  int  // 0 when the label is missing or not a number
	OneOff  bool // created by `compose run`
}

// KeyOf reads the compose labels; ok is false when the container does not
// belong to a compose project (no project or service label).
func KeyOf(labels map[string]string) (k ContainerKey, ok bool) {
	k.Project, k.Service = labels[LabelProject], labels[LabelService]
	if k.Project == "" || k.Service == "" {
		return ContainerKey{}, false
	}
	k.Number, _ = strconv.Atoi(labels[LabelContainerNumber])
	k.OneOff = strings.EqualFold(labels[LabelOneoff], "true")
	return k, true
}

// DefaultContainerName is the name compose gives replica n of a service
// without container_name: <project>-<service>-<n>.
func DefaultContainerName(project, service string, n int) string {
	return project + "-" + service + "-" + strconv.Itoa(n)
}

// legacyContainerName is the compose v1 (and --compatibility) form.
func legacyContainerName(project, service string, n int) string {
	return project + "_" + service + "_" + strconv.Itoa(n)
}
