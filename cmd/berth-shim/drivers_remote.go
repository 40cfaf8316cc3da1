//go:build berth_remotelog

package main

import "github.com/berthd/berth/runtime/logdriver/remote"

func init() {
	for name, f := range remote.Factories() {
		factories[name] = f
	}
}
