// Package logtag renders the tag log option as dockerd does: a Go template
// over the container's logger info ({{.Name}}, {{.ID}}, {{.ImageName}},
// {{index .ContainerLabels "app"}}, ...) with dockerd's template functions
// (json, split, join, title, lower, upper, pad, truncate) and the
// text/template builtins a tag uses (index, len, print, printf, println,
// eq, ne, lt, le, gt, ge, and, or, not).
//
// It parses with text/template/parse, so syntax errors are text/template's,
// and evaluates the tree itself. text/template's executor calls methods by
// name through reflection, and a program that can do that keeps every
// exported method of every type it links (the linker cannot drop one):
// berthd was 34.0 MB with it and 20.7 MB without, ~4 MB less resident at
// idle (docs/benchmarks.md). What a tag cannot use here (range, with,
// template, block, variables, a chain on a parenthesised value) is an error
// in text/template's form, never a different rendering.
package logtag

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"text/template/parse"
)

// Info is what a tag template can name, as dockerd's logger.Info: these
// fields, and the methods ID, FullID, Name, ImageID, ImageFullID,
// ImageName, Command and Hostname.
type Info struct {
	Config              map[string]string
	ContainerID         string
	ContainerName       string // with its leading "/"
	ContainerEntrypoint string
	ContainerArgs       []string
	ContainerImageID    string
	ContainerImageName  string
	ContainerCreated    time.Time
	ContainerEnv        []string
	ContainerLabels     map[string]string
	LogPath             string
	DaemonName          string
}

// ID is the first 12 characters of the container ID.
func (i *Info) ID() string { return cut(i.ContainerID, 12) }

// FullID is the container ID.
func (i *Info) FullID() string { return i.ContainerID }

// Name is the container's name without its leading "/".
func (i *Info) Name() string { return strings.TrimPrefix(i.ContainerName, "/") }

// ImageID is the first 12 characters of the image ID, "sha256:" included,
// as dockerd cuts it.
func (i *Info) ImageID() string { return cut(i.ContainerImageID, 12) }

// ImageFullID is the image ID.
func (i *Info) ImageFullID() string { return i.ContainerImageID }

// ImageName is the image the container was created from, as it was named.
func (i *Info) ImageName() string { return i.ContainerImageName }

// Command is the entrypoint and its arguments.
func (i *Info) Command() string {
	return strings.TrimSpace(i.ContainerEntrypoint + " " + strings.Join(i.ContainerArgs, " "))
}

// Hostname is the host's name.
func (i *Info) Hostname() (string, error) { return os.Hostname() }

func cut(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// Name is the template's name in its errors, as dockerd names it.
const Name = "log-tag"

// Render renders tag over info. Errors are text/template's, in its words.
func Render(tag string, info *Info) (string, error) {
	trees, err := parse.Parse(Name, tag, "", "", funcNames, builtinNames)
	if err != nil {
		return "", err
	}
	s := &state{tree: trees[Name], info: info}
	if s.tree == nil || s.tree.Root == nil {
		return "", nil
	}
	if err := s.walk(s.tree.Root); err != nil {
		return "", err
	}
	return s.out.String(), nil
}

// funcNames are dockerd's template functions, builtinNames the
// text/template builtins supported here: the parser refuses any other
// function as text/template would ("function %q not defined").
// (The parser takes a name whose value is not nil as defined.)
var funcNames = map[string]any{
	"json": true, "split": true, "join": true, "title": true, "lower": true, "upper": true, "pad": true, "truncate": true,
}

var builtinNames = map[string]any{
	"index": true, "len": true, "print": true, "printf": true, "println": true,
	"eq": true, "ne": true, "lt": true, "le": true, "gt": true, "ge": true, "and": true, "or": true, "not": true,
}

type state struct {
	tree *parse.Tree
	info *Info
	out  bytes.Buffer
	node parse.Node // the node being evaluated, for errors
}

// errorf is an execution error located at the current node, as
// text/template words it.
func (s *state) errorf(format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if s.node == nil {
		return fmt.Errorf("template: %s: %s", s.tree.Name, msg)
	}
	loc, ctx := s.tree.ErrorContext(s.node)
	return fmt.Errorf("template: %s: executing %q at <%s>: %s", loc, s.tree.Name, ctx, msg)
}

func (s *state) walk(n parse.Node) error {
	s.node = n
	switch n := n.(type) {
	case *parse.ListNode:
		for _, c := range n.Nodes {
			if err := s.walk(c); err != nil {
				return err
			}
		}
		return nil
	case *parse.TextNode:
		s.out.Write(n.Text)
		return nil
	case *parse.CommentNode:
		return nil
	case *parse.ActionNode:
		if len(n.Pipe.Decl) > 0 {
			return s.errorf("variables are not supported in a log tag")
		}
		v, err := s.pipeline(n.Pipe)
		if err != nil {
			return err
		}
		s.print(v)
		return nil
	case *parse.IfNode:
		v, err := s.pipeline(n.Pipe)
		if err != nil {
			return err
		}
		if truth(v) {
			return s.walk(n.List)
		}
		if n.ElseList != nil {
			return s.walk(n.ElseList)
		}
		return nil
	}
	return s.errorf("%s is not supported in a log tag", strings.Fields(n.String() + " ")[0])
}

// print writes v as text/template prints a value.
func (s *state) print(v any) {
	switch v := v.(type) {
	case nil:
		s.out.WriteString("<no value>")
	case string:
		s.out.WriteString(v)
	default:
		fmt.Fprint(&s.out, v)
	}
}

// pipeline evaluates the commands in turn, each one's value the last
// argument of the next.
func (s *state) pipeline(p *parse.PipeNode) (any, error) {
	if p == nil {
		return nil, s.errorf("missing value")
	}
	if len(p.Decl) > 0 {
		s.node = p
		return nil, s.errorf("variables are not supported in a log tag")
	}
	var v any
	for i, c := range p.Cmds {
		var final *any
		if i > 0 {
			final = &v
		}
		var err error
		if v, err = s.command(c, final); err != nil {
			return nil, err
		}
	}
	return v, nil
}

func (s *state) command(c *parse.CommandNode, final *any) (any, error) {
	s.node = c
	first := c.Args[0]
	switch n := first.(type) {
	case *parse.IdentifierNode:
		args := make([]any, 0, len(c.Args))
		for _, a := range c.Args[1:] {
			v, err := s.arg(a)
			if err != nil {
				return nil, err
			}
			args = append(args, v)
		}
		if final != nil {
			args = append(args, *final)
		}
		s.node = n
		return s.call(n.Ident, args)
	case *parse.FieldNode:
		if len(c.Args) > 1 || final != nil {
			s.node = n
			return nil, s.errorf("%s has arguments but cannot take any", n.Ident[0])
		}
		return s.field(n)
	}
	if len(c.Args) > 1 || final != nil {
		s.node = first
		return nil, s.errorf("can't give argument to non-function %s", first)
	}
	return s.arg(first)
}

// arg is the value of one argument.
func (s *state) arg(n parse.Node) (any, error) {
	s.node = n
	switch n := n.(type) {
	case *parse.StringNode:
		return n.Text, nil
	case *parse.NumberNode:
		switch {
		case n.IsInt:
			return int(n.Int64), nil
		case n.IsFloat:
			return n.Float64, nil
		}
		return nil, s.errorf("%s: unsupported number", n.Text)
	case *parse.BoolNode:
		return n.True, nil
	case *parse.NilNode:
		return nil, s.errorf("nil is not a command")
	case *parse.FieldNode:
		return s.field(n)
	case *parse.PipeNode:
		return s.pipeline(n)
	case *parse.IdentifierNode:
		return s.call(n.Ident, nil)
	}
	return nil, s.errorf("%s is not supported in a log tag", n)
}

// field is .A or .A.B: a field or method of Info, then keys of a map.
func (s *state) field(n *parse.FieldNode) (any, error) {
	s.node = n
	v, err := s.infoField(n.Ident[0])
	if err != nil {
		return nil, err
	}
	for _, key := range n.Ident[1:] {
		m, ok := v.(map[string]string)
		if !ok {
			return nil, s.errorf("can't evaluate field %s in type %s", key, typeName(v))
		}
		val, found := m[key]
		if !found {
			v = nil // text/template's missing map key: "<no value>"
			continue
		}
		v = val
	}
	return v, nil
}

func (s *state) infoField(name string) (any, error) {
	if name == "Hostname" {
		h, err := s.info.Hostname()
		if err != nil {
			return nil, s.errorf("error calling Hostname: %v", err)
		}
		return h, nil
	}
	get, ok := infoFields[name]
	if !ok {
		return nil, s.errorf("can't evaluate field %s in type *logger.Info", name)
	}
	return get(s.info), nil
}

// infoFields are Info's fields and methods by name, but Hostname.
var infoFields = map[string]func(*Info) any{
	"Config":              func(i *Info) any { return i.Config },
	"ContainerID":         func(i *Info) any { return i.ContainerID },
	"ContainerName":       func(i *Info) any { return i.ContainerName },
	"ContainerEntrypoint": func(i *Info) any { return i.ContainerEntrypoint },
	"ContainerArgs":       func(i *Info) any { return i.ContainerArgs },
	"ContainerImageID":    func(i *Info) any { return i.ContainerImageID },
	"ContainerImageName":  func(i *Info) any { return i.ContainerImageName },
	"ContainerCreated":    func(i *Info) any { return i.ContainerCreated },
	"ContainerEnv":        func(i *Info) any { return i.ContainerEnv },
	"ContainerLabels":     func(i *Info) any { return i.ContainerLabels },
	"LogPath":             func(i *Info) any { return i.LogPath },
	"DaemonName":          func(i *Info) any { return i.DaemonName },
	"ID":                  func(i *Info) any { return i.ID() },
	"FullID":              func(i *Info) any { return i.FullID() },
	"Name":                func(i *Info) any { return i.Name() },
	"ImageID":             func(i *Info) any { return i.ImageID() },
	"ImageFullID":         func(i *Info) any { return i.ImageFullID() },
	"ImageName":           func(i *Info) any { return i.ImageName() },
	"Command":             func(i *Info) any { return i.Command() },
}

// typeName names v's type as dockerd's template would see it.
func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "interface {}"
	case map[string]string:
		return "map[string]string"
	case []string:
		return "[]string"
	}
	return fmt.Sprintf("%T", v)
}

// truth is text/template's: the zero value and empty things are false.
func truth(v any) bool {
	switch v := v.(type) {
	case nil:
		return false
	case string:
		return v != ""
	case bool:
		return v
	case int:
		return v != 0
	case uint8:
		return v != 0
	case float64:
		return v != 0
	case []string:
		return len(v) > 0
	case map[string]string:
		return len(v) > 0
	case time.Time:
		return true // a struct is always true
	}
	return true
}

func (s *state) call(name string, args []any) (any, error) {
	want := func(n int) error {
		if len(args) != n {
			return s.errorf("error calling %s: wrong number of args for %s: want %d got %d", name, name, n, len(args))
		}
		return nil
	}
	switch name {
	case "and", "or":
		if len(args) == 0 {
			return nil, s.errorf("wrong number of args for %s: want at least 1 got 0", name)
		}
		for _, a := range args[:len(args)-1] {
			if truth(a) == (name == "or") {
				return a, nil
			}
		}
		return args[len(args)-1], nil
	case "not":
		if err := want(1); err != nil {
			return nil, err
		}
		return !truth(args[0]), nil
	case "len":
		if err := want(1); err != nil {
			return nil, err
		}
		switch a := args[0].(type) {
		case string:
			return len(a), nil
		case []string:
			return len(a), nil
		case map[string]string:
			return len(a), nil
		}
		return nil, s.errorf("error calling len: len of type %s", typeName(args[0]))
	case "index":
		return s.index(args)
	case "print":
		return fmt.Sprint(args...), nil
	case "println":
		return fmt.Sprintln(args...), nil
	case "printf":
		if len(args) == 0 {
			return nil, s.errorf("wrong number of args for printf: want at least 1 got 0")
		}
		f, ok := args[0].(string)
		if !ok {
			return nil, s.errorf("wrong type for value; expected string; got %s", typeName(args[0]))
		}
		return fmt.Sprintf(f, args[1:]...), nil
	case "eq", "ne", "lt", "le", "gt", "ge":
		return s.compare(name, args)
	case "json":
		if err := want(1); err != nil {
			return nil, err
		}
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(args[0]); err != nil {
			return nil, s.errorf("error calling json: %v", err)
		}
		return strings.TrimSpace(b.String()), nil
	case "split":
		if err := want(2); err != nil {
			return nil, err
		}
		for _, a := range args {
			if _, ok := a.(string); !ok {
				return nil, s.errorf("wrong type for value; expected string; got %s", typeName(a))
			}
		}
		return strings.Split(args[0].(string), args[1].(string)), nil
	case "join":
		if err := want(2); err != nil {
			return nil, err
		}
		list, ok := args[0].([]string)
		if !ok {
			return nil, s.errorf("wrong type for value; expected []string; got %s", typeName(args[0]))
		}
		sep, ok := args[1].(string)
		if !ok {
			return nil, s.errorf("wrong type for value; expected string; got %s", typeName(args[1]))
		}
		return strings.Join(list, sep), nil
	case "title", "lower", "upper":
		if err := want(1); err != nil {
			return nil, err
		}
		a, ok := args[0].(string)
		if !ok {
			return nil, s.errorf("wrong type for value; expected string; got %s", typeName(args[0]))
		}
		switch name {
		case "lower":
			return strings.ToLower(a), nil
		case "upper":
			return strings.ToUpper(a), nil
		}
		return strings.Title(a), nil //nolint:staticcheck // dockerd's "title" is strings.Title
	case "pad":
		if err := want(3); err != nil {
			return nil, err
		}
		src, ok := args[0].(string)
		l, ok1 := args[1].(int)
		r, ok2 := args[2].(int)
		if !ok || !ok1 || !ok2 {
			return nil, s.errorf("wrong type for value in pad: want (string, int, int)")
		}
		if src == "" {
			return src, nil
		}
		if l < 0 || r < 0 {
			return nil, s.errorf("error calling pad: negative padding")
		}
		return strings.Repeat(" ", l) + src + strings.Repeat(" ", r), nil
	case "truncate":
		if err := want(2); err != nil {
			return nil, err
		}
		src, ok := args[0].(string)
		n, ok1 := args[1].(int)
		if !ok || !ok1 {
			return nil, s.errorf("wrong type for value in truncate: want (string, int)")
		}
		if n < 0 {
			return nil, s.errorf("error calling truncate: negative length")
		}
		if len(src) < n {
			return src, nil
		}
		return src[:n], nil
	}
	return nil, s.errorf("%q is not a defined function", name)
}

func (s *state) index(args []any) (any, error) {
	if len(args) == 0 {
		return nil, s.errorf("wrong number of args for index: want at least 1 got 0")
	}
	v := args[0]
	for _, k := range args[1:] {
		switch c := v.(type) {
		case map[string]string:
			key, ok := k.(string)
			if !ok {
				return nil, s.errorf("error calling index: value has type %s; should be string", typeName(k))
			}
			v = c[key] // a missing key: the element's zero value, ""
		case []string:
			i, err := s.position(k, len(c))
			if err != nil {
				return nil, err
			}
			v = c[i]
		case string: // a byte, as text/template indexes a string
			i, err := s.position(k, len(c))
			if err != nil {
				return nil, err
			}
			v = c[i]
		case nil:
			return nil, s.errorf("error calling index: index of untyped nil")
		default:
			return nil, s.errorf("error calling index: can't index item of type %s", typeName(v))
		}
	}
	return v, nil
}

// position is k as an index into n things.
func (s *state) position(k any, n int) (int, error) {
	i, ok := k.(int)
	if !ok {
		return 0, s.errorf("error calling index: cannot index slice/array with type %s", typeName(k))
	}
	if i < 0 || i >= n {
		return 0, s.errorf("error calling index: index out of range: %d", i)
	}
	return i, nil
}

// compare is eq, ne, lt, le, gt, ge on strings, ints, floats and bools (eq
// with several arguments: equal to any of them).
func (s *state) compare(name string, args []any) (any, error) {
	if len(args) < 2 || (name != "eq" && len(args) != 2) {
		return nil, s.errorf("wrong number of args for %s: want 2 got %d", name, len(args))
	}
	cmp := func(a, b any) (int, error) {
		switch x := a.(type) {
		case string:
			if y, ok := b.(string); ok {
				return strings.Compare(x, y), nil
			}
		case int:
			if y, ok := b.(int); ok {
				return sign(float64(x - y)), nil
			}
		case float64:
			if y, ok := b.(float64); ok {
				return sign(x - y), nil
			}
		case bool:
			if y, ok := b.(bool); ok && (name == "eq" || name == "ne") {
				if x == y {
					return 0, nil
				}
				return 1, nil
			}
		}
		return 0, s.errorf("error calling %s: incompatible types for comparison", name)
	}
	if name == "eq" {
		for _, b := range args[1:] {
			c, err := cmp(args[0], b)
			if err != nil {
				return nil, err
			}
			if c == 0 {
				return true, nil
			}
		}
		return false, nil
	}
	c, err := cmp(args[0], args[1])
	if err != nil {
		return nil, err
	}
	switch name {
	case "ne":
		return c != 0, nil
	case "lt":
		return c < 0, nil
	case "le":
		return c <= 0, nil
	case "gt":
		return c > 0, nil
	}
	return c >= 0, nil
}

func sign(f float64) int {
	switch {
	case f < 0:
		return -1
	case f > 0:
		return 1
	}
	return 0
}
