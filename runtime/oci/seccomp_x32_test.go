package oci

import (
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestNoX32ABIFromKernelConfig(t *testing.T) {
	for _, tc := range []struct {
		name, config string
		want         bool
	}{
		{"x32 not set (5.18+)", "CONFIG_X86_64=y\n# CONFIG_X86_X32_ABI is not set\n", true},
		{"x32 ABI built in", "CONFIG_X86_64=y\nCONFIG_X86_X32_ABI=y\n", false},
		{"x32 before 5.18", "CONFIG_X86_64=y\nCONFIG_X86_X32=y\n", false},
		{"no x32 line at all", "CONFIG_X86_64=y\nCONFIG_SMP=y\n", true},
		{"not an x86_64 kernel", "CONFIG_ARM64=y\n", false},
		{"nothing read", "", false},
		// only whole lines count
		{"a longer option", "CONFIG_X86_64=y\nCONFIG_X86_X32_ABI_EXTRA=y\n", true},
	} {
		assert.Check(t, is.Equal(noX32ABI(tc.config), tc.want), tc.name)
	}
}

// The default profile leaves x32 out only where the kernel has no x32 ABI;
// a profile given by the user is applied as given.
func TestSeccompArchitecturesFollowTheKernel(t *testing.T) {
	gen := func(noX32 bool, secOpt ...string) *specs.Spec {
		t.Helper()
		in := baseInput()
		in.Host.NoX32ABI = noX32
		in.HostConfig.SecurityOpt = secOpt
		s, err := Generate(in)
		assert.NilError(t, err)
		assert.Assert(t, s.Linux.Seccomp != nil)
		return s
	}
	docker := []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32}
	assert.Check(t, is.DeepEqual(gen(false).Linux.Seccomp.Architectures, docker))
	without := gen(true).Linux.Seccomp
	assert.Check(t, is.DeepEqual(without.Architectures, []specs.Arch{specs.ArchX86_64, specs.ArchX86}))
	// the rules are Docker's all the same
	assert.Check(t, is.DeepEqual(without.Syscalls, gen(false).Linux.Seccomp.Syscalls))

	user := `seccomp={"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X32"],"syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]}`
	assert.Check(t, is.DeepEqual(gen(true, user).Linux.Seccomp.Architectures, []specs.Arch{specs.ArchX86_64, specs.ArchX32}))
}
