/* boot_util.c: read a guest image or initramfs into memory, size-checked */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "boot_util.h"

#define BOOT_FILE_MAX (1ull << 30)

int boot_file_read(struct vm *vm, const char *path, struct boot_file *f)
{
	struct stat sb;
	FILE *fp;

	f->data = NULL;
	f->size = 0;
	fp = fopen(path, "rb");
	if (!fp)
		return vm__fail(vm, "%s: %s", path, strerror(errno));
	if (fstat(fileno(fp), &sb) < 0 || !S_ISREG(sb.st_mode) ||
	    (uint64_t)sb.st_size > BOOT_FILE_MAX || sb.st_size == 0) {
		fclose(fp);
		return vm__fail(vm, "%s: not a regular file of 1 byte .. 1 GiB", path);
	}
	f->size = (size_t)sb.st_size;
	f->data = malloc(f->size);
	if (!f->data || fread(f->data, 1, f->size, fp) != f->size) {
		fclose(fp);
		boot_file_free(f);
		return vm__fail(vm, "%s: read failed", path);
	}
	fclose(fp);
	return 0;
}

void boot_file_free(struct boot_file *f)
{
	free(f->data);
	f->data = NULL;
	f->size = 0;
}
