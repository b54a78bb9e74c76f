package kernels

import (
	"os"
	"strings"
	"testing"
)

// forEachImpl runs f as a subtest once for every implementation this CPU
// supports, with that implementation active, so that the exported
// functions under test go through it.
func forEachImpl(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	for _, im := range impls {
		t.Run(im.name, func(t *testing.T) {
			saved := active
			active = im
			defer func() { active = saved }()
			f(t)
		})
	}
}

func TestImpls(t *testing.T) {
	var names []string
	for _, im := range impls {
		names = append(names, im.name)
	}
	t.Logf("implementations tested: %v; default %q", names, Impl())
	if impls[len(impls)-1] != goImpl {
		t.Errorf("the Go reference is not last in %v", names)
	}
	// SWITCHYARD_TEST_IMPLS=avx512,avx2 makes the run fail on a CPU that
	// lacks one of them, so a check meant for AVX-512 cannot pass without it.
	for _, want := range strings.Split(os.Getenv("SWITCHYARD_TEST_IMPLS"), ",") {
		if want != "" && !strings.Contains(" "+strings.Join(names, " ")+" ", " "+want+" ") {
			t.Errorf("SWITCHYARD_TEST_IMPLS wants %q, this CPU runs only %v", want, names)
		}
	}
}

func TestSelectImpl(t *testing.T) {
	if got := selectImpl("go"); got != goImpl {
		t.Errorf(`selectImpl("go") = %q`, got.name)
	}
	for _, want := range []string{"", "fastest", "avx512"} {
		if got := selectImpl(want); got != impls[0] {
			t.Errorf("selectImpl(%q) = %q, want %q", want, got.name, impls[0].name)
		}
	}
	got := selectImpl("avx2")
	if implRank[got.name] > implRank["avx2"] {
		t.Errorf(`selectImpl("avx2") = %q`, got.name)
	}
	if cpuHas("avx2") && got.name != "avx2" {
		t.Errorf(`selectImpl("avx2") = %q on a CPU with AVX2`, got.name)
	}
}

// cpuHas reports whether the implementation called name runs here.
func cpuHas(name string) bool {
	for _, im := range impls {
		if im.name == name {
			return true
		}
	}
	return false
}
