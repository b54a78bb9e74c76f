//go:build !purego

package kernels

// cpu holds the instruction-set extensions the kernels can use here, read
// once with CPUID and XGETBV.
var cpu = detectCPU()

// cpuFeatures says which kernel sets this CPU and operating system run.
type cpuFeatures struct {
	avx2   bool // AVX2 with FMA and F16C, and the OS saves ymm state
	avx512 bool // all of the above and AVX512F, and the OS saves zmm state
}

// CPUID and XCR0 bits, from the Intel SDM volume 2 (CPUID) and volume 1
// section 13 (XSAVE-managed state).
const (
	cpuid1ECXFMA     = 1 << 12
	cpuid1ECXOSXSAVE = 1 << 27
	cpuid1ECXAVX     = 1 << 28
	cpuid1ECXF16C    = 1 << 29
	cpuid7EBXAVX2    = 1 << 5
	cpuid7EBXAVX512F = 1 << 16
	xcr0AVX          = 1<<1 | 1<<2                  // SSE and AVX (upper ymm) state
	xcr0AVX512       = xcr0AVX | 1<<5 | 1<<6 | 1<<7 // plus opmask, upper zmm0-15, zmm16-31
)

func detectCPU() cpuFeatures {
	maxLeaf, _, _, _ := cpuid(0, 0)
	if maxLeaf < 7 {
		return cpuFeatures{}
	}
	_, _, ecx1, _ := cpuid(1, 0)
	_, ebx7, _, _ := cpuid(7, 0)
	if ecx1&cpuid1ECXOSXSAVE == 0 { // XGETBV would fault
		return cpuFeatures{}
	}
	xcr0, _ := xgetbv()
	has := func(reg, bits uint32) bool { return reg&bits == bits }
	var f cpuFeatures
	f.avx2 = has(xcr0, xcr0AVX) && has(ecx1, cpuid1ECXAVX|cpuid1ECXFMA|cpuid1ECXF16C) && has(ebx7, cpuid7EBXAVX2)
	f.avx512 = f.avx2 && has(xcr0, xcr0AVX512) && has(ebx7, cpuid7EBXAVX512F)
	return f
}
