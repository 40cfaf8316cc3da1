package remote

import (
	"github.com/berthd/berth/runtime/logdriver"
	"github.com/fluent/fluent-logger-golang/fluent"
)

// fluentdDriver posts each entry as a fluentd forward-protocol event with
// fluent-logger-golang, as dockerd: tagged with the tag option (the
// container's short ID by default), the record {container_id,
// container_name, source, log} plus the extra attributes.
type fluentdDriver struct {
	w      *fluent.Fluent
	tag    string
	id     string
	name   string
	extras map[string]string
}

func openFluentd(cfg logdriver.Config) (logdriver.Driver, error) {
	c, err := logdriver.ParseFluentd(cfg.Opts)
	if err != nil {
		return nil, err
	}
	w, err := fluent.New(fluent.Config{
		FluentPort: c.Port, FluentHost: c.Host, FluentNetwork: c.Network, FluentSocketPath: c.SocketPath,
		BufferLimit: c.BufferLimit, RetryWait: c.RetryWait, MaxRetry: c.MaxRetries,
		// fluentd-async runs this synchronous client behind berth's ring
		// (logdriver.Open), which connects in the background and bounds
		// the queue in bytes
		SubSecondPrecision: c.SubSecondPrecision, RequestAck: c.RequestAck,
		WriteTimeout: c.WriteTimeout, ReadTimeout: c.ReadTimeout,
	})
	if err != nil {
		return nil, err
	}
	return &fluentdDriver{w: w, tag: cfg.Info.Tag, id: cfg.Info.ContainerID, name: "/" + cfg.Info.ContainerName, extras: cfg.Info.Attrs}, nil
}

func (d *fluentdDriver) Log(m *logdriver.Message) error {
	line := m.Line
	if n := len(line); n > 0 && line[n-1] == '\n' {
		line = line[:n-1]
	}
	data := make(map[string]string, 4+len(d.extras))
	for k, v := range d.extras {
		data[k] = v
	}
	data["container_id"] = d.id
	data["container_name"] = d.name
	data["source"] = m.Stream
	data["log"] = string(line)
	return d.w.PostWithTime(d.tag, m.Time, data)
}

func (d *fluentdDriver) Close() error { return d.w.Close() }
