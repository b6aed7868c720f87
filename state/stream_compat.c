/* stream_compat.c: may a stream run here? The header's CPU, personality, versions and sizes against this host */
#include <cpuid.h>
#include <stdio.h>
#include <string.h>

#include "stream_int.h"

/* ---- CPU features ---- */

static const char *const word_names[STREAM_CPU_WORDS] = {
	"1.ecx", "1.edx", "7.ebx", "7.ecx", "7.edx", "0x80000001.ecx", "0x80000001.edx",
};

/* Bits that describe the OS or the platform, not a capability: never compared. */
static const uint32_t ignored[STREAM_CPU_WORDS] = {
	[STREAM_CPU_1_ECX] = 1u << 27 | 1u << 31, /* OSXSAVE, hypervisor */
	[STREAM_CPU_7_ECX] = 1u << 4,		  /* OSPKE */
	[STREAM_CPU_7_EDX] = 1u << 15,		  /* hybrid */
};

struct feature {
	uint8_t word, bit;
	const char *name;
};

/* The ones worth a name in a refusal; any other bit is reported by number. */
static const struct feature features[] = {
	{ STREAM_CPU_1_ECX, 0, "sse3" }, { STREAM_CPU_1_ECX, 1, "pclmulqdq" },
	{ STREAM_CPU_1_ECX, 9, "ssse3" }, { STREAM_CPU_1_ECX, 12, "fma" },
	{ STREAM_CPU_1_ECX, 13, "cx16" }, { STREAM_CPU_1_ECX, 17, "pcid" },
	{ STREAM_CPU_1_ECX, 19, "sse4_1" }, { STREAM_CPU_1_ECX, 20, "sse4_2" },
	{ STREAM_CPU_1_ECX, 21, "x2apic" }, { STREAM_CPU_1_ECX, 22, "movbe" },
	{ STREAM_CPU_1_ECX, 23, "popcnt" }, { STREAM_CPU_1_ECX, 24, "tsc_deadline_timer" },
	{ STREAM_CPU_1_ECX, 25, "aes" }, { STREAM_CPU_1_ECX, 26, "xsave" },
	{ STREAM_CPU_1_ECX, 28, "avx" }, { STREAM_CPU_1_ECX, 29, "f16c" },
	{ STREAM_CPU_1_ECX, 30, "rdrand" },
	{ STREAM_CPU_1_EDX, 0, "fpu" }, { STREAM_CPU_1_EDX, 4, "tsc" },
	{ STREAM_CPU_1_EDX, 5, "msr" }, { STREAM_CPU_1_EDX, 6, "pae" },
	{ STREAM_CPU_1_EDX, 8, "cx8" }, { STREAM_CPU_1_EDX, 9, "apic" },
	{ STREAM_CPU_1_EDX, 11, "sep" }, { STREAM_CPU_1_EDX, 13, "pge" },
	{ STREAM_CPU_1_EDX, 15, "cmov" }, { STREAM_CPU_1_EDX, 16, "pat" },
	{ STREAM_CPU_1_EDX, 19, "clflush" }, { STREAM_CPU_1_EDX, 23, "mmx" },
	{ STREAM_CPU_1_EDX, 24, "fxsr" }, { STREAM_CPU_1_EDX, 25, "sse" },
	{ STREAM_CPU_1_EDX, 26, "sse2" },
	{ STREAM_CPU_7_EBX, 0, "fsgsbase" }, { STREAM_CPU_7_EBX, 3, "bmi1" },
	{ STREAM_CPU_7_EBX, 5, "avx2" }, { STREAM_CPU_7_EBX, 7, "smep" },
	{ STREAM_CPU_7_EBX, 8, "bmi2" }, { STREAM_CPU_7_EBX, 9, "erms" },
	{ STREAM_CPU_7_EBX, 10, "invpcid" }, { STREAM_CPU_7_EBX, 16, "avx512f" },
	{ STREAM_CPU_7_EBX, 18, "rdseed" }, { STREAM_CPU_7_EBX, 19, "adx" },
	{ STREAM_CPU_7_EBX, 20, "smap" }, { STREAM_CPU_7_EBX, 23, "clflushopt" },
	{ STREAM_CPU_7_EBX, 24, "clwb" }, { STREAM_CPU_7_EBX, 29, "sha_ni" },
	{ STREAM_CPU_7_ECX, 1, "avx512vbmi" }, { STREAM_CPU_7_ECX, 2, "umip" },
	{ STREAM_CPU_7_ECX, 3, "pku" }, { STREAM_CPU_7_ECX, 22, "rdpid" },
	{ STREAM_CPU_7_EDX, 4, "fsrm" }, { STREAM_CPU_7_EDX, 10, "md_clear" },
	{ STREAM_CPU_X1_ECX, 0, "lahf_lm" }, { STREAM_CPU_X1_ECX, 5, "abm" },
	{ STREAM_CPU_X1_ECX, 6, "sse4a" }, { STREAM_CPU_X1_ECX, 8, "3dnowprefetch" },
	{ STREAM_CPU_X1_EDX, 11, "syscall" }, { STREAM_CPU_X1_EDX, 20, "nx" },
	{ STREAM_CPU_X1_EDX, 26, "pdpe1gb" }, { STREAM_CPU_X1_EDX, 27, "rdtscp" },
	{ STREAM_CPU_X1_EDX, 29, "lm" },
};

int stream_cpu_local(struct stream_cpu *cpu)
{
	unsigned a, b, c, d, max;

	memset(cpu, 0, sizeof(*cpu));
	if (!__get_cpuid(0, &max, &b, &c, &d))
		return -1;
	memcpy(cpu->vendor, &b, 4);
	memcpy(cpu->vendor + 4, &d, 4);
	memcpy(cpu->vendor + 8, &c, 4);
	if (__get_cpuid(1, &a, &b, &c, &d)) {
		cpu->word[STREAM_CPU_1_ECX] = c;
		cpu->word[STREAM_CPU_1_EDX] = d;
	}
	if (max >= 7 && __get_cpuid_count(7, 0, &a, &b, &c, &d)) {
		cpu->word[STREAM_CPU_7_EBX] = b;
		cpu->word[STREAM_CPU_7_ECX] = c;
		cpu->word[STREAM_CPU_7_EDX] = d;
	}
	if (__get_cpuid(0x80000001, &a, &b, &c, &d)) {
		cpu->word[STREAM_CPU_X1_ECX] = c;
		cpu->word[STREAM_CPU_X1_EDX] = d;
	}
	return 0;
}

static void size_text(char *buf, size_t len, uint64_t bytes)
{
	if (bytes % (1u << 20) == 0)
		snprintf(buf, len, "%llu MiB", (unsigned long long)(bytes >> 20));
	else
		snprintf(buf, len, "%llu KiB", (unsigned long long)(bytes >> 10));
}

int stream_check_host(const struct stream_info *info, const struct stream_host *host,
		      char *why, size_t whylen)
{
	char a[32], b[32];
	uint32_t missing;
	unsigned i, w, bit;

	if (info->version != STREAM_VERSION) {
		st_err(why, whylen, "stream version %u: target reads version %u", info->version,
		       STREAM_VERSION);
		return -1;
	}
	for (i = 0; i < host->nr_personalities; i++)
		if (host->personalities[i] && !strcmp(host->personalities[i], info->personality))
			break;
	if (i == host->nr_personalities) {
		st_err(why, whylen, "target lacks personality '%s'", info->personality);
		return -1;
	}
	if (info->image_abi > host->image_abi) {
		st_err(why, whylen, "guest-image ABI %u: target runs up to %u", info->image_abi,
		       host->image_abi);
		return -1;
	}
	if (info->patch_table_version > host->patch_table_version) {
		st_err(why, whylen, "patch table version %u: target reads up to %u",
		       info->patch_table_version, host->patch_table_version);
		return -1;
	}
	if (strcmp(info->cpu.vendor, host->cpu.vendor)) {
		st_err(why, whylen, "CPU vendor '%s': target is '%s'", info->cpu.vendor,
		       host->cpu.vendor);
		return -1;
	}
	for (w = 0; w < STREAM_CPU_WORDS; w++) {
		missing = info->cpu.word[w] & ~host->cpu.word[w] & ~ignored[w];
		if (!missing)
			continue;
		for (bit = 0; !(missing >> bit & 1); bit++)
			;
		for (i = 0; i < sizeof(features) / sizeof(features[0]); i++)
			if (features[i].word == w && features[i].bit == bit)
				break;
		if (i < sizeof(features) / sizeof(features[0]))
			st_err(why, whylen, "CPU feature %s (cpuid %s bit %u) missing on target",
			       features[i].name, word_names[w], bit);
		else
			st_err(why, whylen, "CPU feature cpuid %s bit %u missing on target",
			       word_names[w], bit);
		return -1;
	}
	if (info->page_size != STREAM_PAGE_SIZE) {
		st_err(why, whylen, "page size %u: target uses %u", info->page_size,
		       STREAM_PAGE_SIZE);
		return -1;
	}
	if (info->ram_size > host->max_ram) {
		size_text(a, sizeof(a), info->ram_size);
		size_text(b, sizeof(b), host->max_ram);
		st_err(why, whylen, "guest RAM %s: target allows at most %s", a, b);
		return -1;
	}
	if (info->nr_vcpus > host->max_vcpus) {
		st_err(why, whylen, "%u vCPUs: target runs at most %u", info->nr_vcpus,
		       host->max_vcpus);
		return -1;
	}
	return 0;
}
