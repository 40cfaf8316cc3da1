package compose

import (
	"strconv"

	"github.com/moby/moby/api/types/container"
)

// labels builds compose labels for project/service/number; number 0 makes a
// one-off container.
func labels(project, service string, number int) map[string]string {
	l := map[string]string{LabelProject: project, LabelService: service, LabelOneoff: "False"}
	if number == 0 {
		l[LabelOneoff] = "True"
	} else {
		l[LabelContainerNumber] = strconv.Itoa(number)
	}
	return l
}

func summary(id, name string, l map[string]string, state container.ContainerState) container.Summary {
	return container.Summary{ID: id, Names: []string{"/" + name}, Labels: l, State: state, Image: "busybox:latest"}
}
