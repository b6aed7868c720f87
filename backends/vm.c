/* vm.c: the generic VM: creation, guest memory, PIO/MMIO dispatch, irq and timer registration */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"
#include "rt_abi.h"

int vm__fail(struct vm *vm, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(vm->err, sizeof vm->err, fmt, ap);
	va_end(ap);
	return -1;
}

uint64_t vm__now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

struct vm *vm__create(const struct vm_ops *ops, uint64_t mem_size, unsigned nr_vcpus,
		      char *cause, size_t causelen)
{
	struct vm *vm;

	/* 2 MiB granularity keeps the loaders' identity maps and the dirty
	 * bitmap (a whole number of 64-bit words) simple. */
	if (mem_size < (4u << 20) || mem_size > VM_MAX_RAM || mem_size % (2u << 20)) {
		snprintf(cause, causelen, "memory size must be a multiple of 2 MiB, 4 MiB .. 3 GiB");
		return NULL;
	}
	if (nr_vcpus < 1 || nr_vcpus > VM_MAX_VCPUS) {
		snprintf(cause, causelen, "vCPU count must be 1 .. %d", VM_MAX_VCPUS);
		return NULL;
	}
	vm = calloc(1, sizeof *vm);
	if (!vm) {
		snprintf(cause, causelen, "out of memory");
		return NULL;
	}
	vm->ops = ops;
	vm->mem_size = mem_size;
	vm->nr_vcpus = nr_vcpus;
	/* Recursive: a device callback (a guest moving a PCI BAR) registers
	 * and unregisters ranges, and those take the lock it already holds. */
	{
		pthread_mutexattr_t ma;

		pthread_mutexattr_init(&ma);
		pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
		pthread_mutex_init(&vm->dev_lock, &ma);
		pthread_mutexattr_destroy(&ma);
	}
	pthread_mutex_init(&vm->run_lock, NULL);
	pthread_cond_init(&vm->run_cond, NULL);

	/* A memory file, so that an in-place move can hand the very pages to
	 * the next process instead of copying them (vm__ram_share).  memfd
	 * is sparse like the anonymous NORESERVE mapping it replaces: a
	 * 3 GiB guest that touches 10 MiB costs 10 MiB.  Huge pages: neither
	 * had them here (anonymous THP is "madvise", shmem THP "never"). */
	vm->mem_fd = memfd_create("pvmigrate-guest-ram", MFD_CLOEXEC);
	if (vm->mem_fd < 0 || ftruncate(vm->mem_fd, (off_t)mem_size) < 0) {
		snprintf(cause, causelen, "guest RAM: memory file: %s", strerror(errno));
		if (vm->mem_fd >= 0)
			close(vm->mem_fd);
		free(vm);
		return NULL;
	}
	vm->mem = mmap(NULL, mem_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE,
		       vm->mem_fd, 0);
	if (vm->mem == MAP_FAILED) {
		snprintf(cause, causelen, "guest RAM: %s", strerror(errno));
		close(vm->mem_fd);
		free(vm);
		return NULL;
	}
	vm->host_dirty = calloc(1, vm__dirty_bitmap_bytes(vm));
	if (!vm->host_dirty || ops->create(vm) < 0) {
		snprintf(cause, causelen, "%s", vm->host_dirty ? vm->err : "out of memory");
		munmap(vm->mem, mem_size);
		close(vm->mem_fd);
		free(vm->host_dirty);
		free(vm);
		return NULL;
	}
	return vm;
}

int vm__ram_share(struct vm *vm, int fd, int private_view)
{
	struct stat st;
	void *p;

	if (fstat(fd, &st) < 0)
		return vm__fail(vm, "shared RAM: fstat: %s", strerror(errno));
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != vm->mem_size)
		return vm__fail(vm, "shared RAM: the memory file has %llu bytes, the guest %llu",
				(unsigned long long)st.st_size, (unsigned long long)vm->mem_size);
	/* Same address: the KVM memory slot refers to it, and follows the
	 * new pages through the MMU notifier (nothing to re-register). */
	p = mmap(vm->mem, vm->mem_size, PROT_READ | PROT_WRITE,
		 (private_view ? MAP_PRIVATE : MAP_SHARED) | MAP_FIXED | MAP_NORESERVE, fd, 0);
	if (p == MAP_FAILED)
		return vm__fail(vm, "shared RAM: mmap: %s", strerror(errno));
	if (vm->mem_fd >= 0 && vm->mem_fd != fd)
		close(vm->mem_fd);
	vm->mem_fd = fd;
	return 0;
}

void vm__ram_detach(struct vm *vm)
{
	/* MAP_FIXED replaces the mapping in one step: there is no moment in
	 * which the address is free for someone else's mmap. */
	if (mmap(vm->mem, vm->mem_size, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0) == MAP_FAILED)
		munmap(vm->mem, vm->mem_size); /* then nothing at all */
	if (vm->mem_fd >= 0)
		close(vm->mem_fd);
	vm->mem_fd = -1;
}

int vm__ram_touched(struct vm *vm, uint64_t gfn, struct vm_ram_extent *e)
{
	off_t off = (off_t)(gfn * VM_PAGE_SIZE), d, h;

	if (gfn >= e->first && gfn < e->end)
		return e->data;
	if (vm->mem_fd < 0)
		return 1;
	/* A page of the file, resident or swapped out, is data; only a hole
	 * was never written (pagemap would not do: it tells what this
	 * process mapped, and a page another process wrote is not). */
	d = lseek(vm->mem_fd, off, SEEK_DATA);
	if (d < 0 && errno != ENXIO)
		return 1; /* cannot tell: the caller reads the page */
	if (d < 0 || d > off) {
		e->first = gfn;
		e->end = d < 0 ? vm->mem_size / VM_PAGE_SIZE : (uint64_t)d / VM_PAGE_SIZE;
		e->data = 0;
		return e->end > gfn ? 0 : 1;
	}
	h = lseek(vm->mem_fd, off, SEEK_HOLE);
	if (h < 0)
		return 1;
	e->first = gfn;
	e->end = ((uint64_t)h + VM_PAGE_SIZE - 1) / VM_PAGE_SIZE;
	e->data = 1;
	return 1;
}

void vm__destroy(struct vm *vm)
{
	if (!vm)
		return;
	/* The platform first: its threads may still touch the NIC, and so RAM;
	 * the runtime's channel threads touch the window. */
	vm__platform_destroy(vm);
	vm__kvm_host_destroy(vm);
	vm->ops->destroy(vm);
	munmap(vm->mem, vm->mem_size);
	if (vm->mem_fd >= 0)
		close(vm->mem_fd);
	if (vm->window)
		munmap(vm->window, RT_WINDOW_SIZE);
	free(vm->host_dirty);
	pthread_cond_destroy(&vm->run_cond);
	pthread_mutex_destroy(&vm->run_lock);
	pthread_mutex_destroy(&vm->dev_lock);
	free(vm);
}

void *vm__gpa(struct vm *vm, uint64_t gpa, uint64_t len)
{
	/* Written so that no sum can wrap: gpa and len come from the guest. */
	if (gpa > vm->mem_size || len > vm->mem_size - gpa)
		return NULL;
	return vm->mem + gpa;
}

int vm__window_create(struct vm *vm)
{
	void *w;

	if (vm->window)
		return vm__fail(vm, "the runtime window exists already");
	/* The window must not shadow RAM: the guest maps both identity. */
	if (vm->mem_size > RT_WINDOW_BASE)
		return vm__fail(vm, "guest RAM (%llu MiB) must end at or below the runtime window "
				"at %#llx (%llu MiB)",
				(unsigned long long)(vm->mem_size >> 20),
				(unsigned long long)RT_WINDOW_BASE,
				(unsigned long long)(RT_WINDOW_BASE >> 20));
	if (!vm->ops->map_window)
		return vm__fail(vm, "the %s backend has no runtime window", vm->ops->name);
	w = mmap(NULL, RT_WINDOW_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (w == MAP_FAILED)
		return vm__fail(vm, "runtime window: %s", strerror(errno));
	vm->window = w;
	if (vm->ops->map_window(vm) < 0) {
		munmap(w, RT_WINDOW_SIZE);
		vm->window = NULL;
		return -1;
	}
	return 0;
}

void *vm__window(struct vm *vm, uint64_t gpa, uint64_t len)
{
	if (!vm->window || gpa < RT_WINDOW_BASE || gpa - RT_WINDOW_BASE > RT_WINDOW_SIZE ||
	    len > RT_WINDOW_SIZE - (gpa - RT_WINDOW_BASE))
		return NULL;
	return vm->window + (gpa - RT_WINDOW_BASE);
}

void *vm__guest_ptr(struct vm *vm, uint64_t gpa, uint64_t len)
{
	void *p = vm__gpa(vm, gpa, len);

	return p ? p : vm__window(vm, gpa, len);
}

size_t vm__dirty_bitmap_bytes(const struct vm *vm)
{
	return (size_t)(vm->mem_size / VM_PAGE_SIZE / 8);
}

void vm__mark_dirty(struct vm *vm, uint64_t gpa, uint64_t len)
{
	uint64_t pfn, last;

	if (!vm->dirty_on || len == 0 || !vm__gpa(vm, gpa, len))
		return;
	last = (gpa + len - 1) / VM_PAGE_SIZE;
	for (pfn = gpa / VM_PAGE_SIZE; pfn <= last; pfn++)
		__atomic_fetch_or(&vm->host_dirty[pfn / 64], 1ull << (pfn % 64), __ATOMIC_RELAXED);
}

int vm__write(struct vm *vm, uint64_t gpa, const void *src, uint64_t len)
{
	void *dst = vm__gpa(vm, gpa, len);

	if (!dst)
		return vm__fail(vm, "write of %#llx bytes at gpa %#llx is outside RAM",
				(unsigned long long)len, (unsigned long long)gpa);
	memcpy(dst, src, len);
	vm__mark_dirty(vm, gpa, len);
	return 0;
}

static int io_register(struct vm *vm, struct vm_io_range *tab, unsigned *nr, uint64_t limit,
		       uint64_t base, uint64_t len, const struct vm_io_ops *ops, void *opaque)
{
	unsigned i;

	if (len == 0 || base > limit || len - 1 > limit - base)
		return vm__fail(vm, "I/O range %#llx+%#llx is out of bounds",
				(unsigned long long)base, (unsigned long long)len);
	for (i = 0; i < *nr; i++)
		if (base < tab[i].base + tab[i].len && tab[i].base < base + len)
			return vm__fail(vm, "I/O range %#llx+%#llx overlaps %#llx+%#llx",
					(unsigned long long)base, (unsigned long long)len,
					(unsigned long long)tab[i].base,
					(unsigned long long)tab[i].len);
	if (*nr == VM_MAX_IO)
		return vm__fail(vm, "too many I/O ranges");
	tab[*nr] = (struct vm_io_range){ base, len, ops, opaque };
	(*nr)++;
	return 0;
}

int vm__register_pio(struct vm *vm, uint64_t base, uint64_t len,
		     const struct vm_io_ops *ops, void *opaque)
{
	int rc;

	pthread_mutex_lock(&vm->dev_lock);
	rc = io_register(vm, vm->pio, &vm->nr_pio, 0xffff, base, len, ops, opaque);
	pthread_mutex_unlock(&vm->dev_lock);
	return rc;
}

int vm__register_mmio(struct vm *vm, uint64_t base, uint64_t len,
		      const struct vm_io_ops *ops, void *opaque)
{
	int rc;

	/* MMIO inside RAM would never exit: KVM maps the slot. */
	if (base < vm->mem_size)
		return vm__fail(vm, "MMIO range %#llx lies in guest RAM", (unsigned long long)base);
	if (vm->window && len && base < RT_WINDOW_BASE + RT_WINDOW_SIZE &&
	    (base >= RT_WINDOW_BASE || len > RT_WINDOW_BASE - base))
		return vm__fail(vm, "MMIO range %#llx lies in the runtime window",
				(unsigned long long)base);
	pthread_mutex_lock(&vm->dev_lock);
	rc = io_register(vm, vm->mmio, &vm->nr_mmio, UINT64_MAX, base, len, ops, opaque);
	pthread_mutex_unlock(&vm->dev_lock);
	return rc;
}

/* Remove the range at (base) owned by (opaque); a no-op if there is none. */
static void io_unregister(struct vm *vm, struct vm_io_range *tab, unsigned *nr, uint64_t base,
			  void *opaque)
{
	unsigned i;

	pthread_mutex_lock(&vm->dev_lock);
	for (i = 0; i < *nr; i++)
		if (tab[i].base == base && tab[i].opaque == opaque) {
			tab[i] = tab[--(*nr)];
			break;
		}
	pthread_mutex_unlock(&vm->dev_lock);
}

void vm__unregister_pio(struct vm *vm, uint64_t base, void *opaque)
{
	io_unregister(vm, vm->pio, &vm->nr_pio, base, opaque);
}

void vm__unregister_mmio(struct vm *vm, uint64_t base, void *opaque)
{
	io_unregister(vm, vm->mmio, &vm->nr_mmio, base, opaque);
}

void vm__set_irq_source(struct vm *vm, const struct vm_irq_ops *ops, void *opaque)
{
	pthread_mutex_lock(&vm->dev_lock);
	vm->irq = ops;
	vm->irq_opaque = opaque;
	pthread_mutex_unlock(&vm->dev_lock);
}

int vm__register_timer(struct vm *vm, const struct vm_timer_ops *ops, void *opaque)
{
	int rc = 0;

	pthread_mutex_lock(&vm->dev_lock);
	if (vm->nr_timers == VM_MAX_TIMERS) {
		rc = vm__fail(vm, "too many timers");
	} else {
		vm->timers[vm->nr_timers].ops = ops;
		vm->timers[vm->nr_timers].opaque = opaque;
		vm->nr_timers++;
	}
	pthread_mutex_unlock(&vm->dev_lock);
	return rc;
}

static struct vm_io_range *io_find(struct vm_io_range *tab, unsigned nr, uint64_t addr,
				   unsigned size)
{
	unsigned i;

	for (i = 0; i < nr; i++)
		if (addr >= tab[i].base && addr - tab[i].base + size <= tab[i].len)
			return &tab[i];
	return NULL;
}

/* Little-endian bytes <-> value, the layout of kvm_run's data buffers. */
static uint64_t bytes_get(const uint8_t *p, unsigned size)
{
	uint64_t v = 0;

	while (size--)
		v = (v << 8) | p[size];
	return v;
}

static void bytes_put(uint8_t *p, unsigned size, uint64_t v)
{
	unsigned i;

	for (i = 0; i < size; i++, v >>= 8)
		p[i] = (uint8_t)v;
}

static int io_dispatch(struct vm *vm, struct vm_io_range *tab, unsigned nr, uint64_t addr,
		       int is_write, unsigned size, uint8_t *data)
{
	struct vm_io_range *r;
	int rc = -1;

	pthread_mutex_lock(&vm->dev_lock);
	r = io_find(tab, nr, addr, size);
	if (r) {
		if (is_write) {
			if (r->ops->write)
				r->ops->write(r->opaque, addr - r->base, size, bytes_get(data, size));
		} else {
			bytes_put(data, size,
				  r->ops->read ? r->ops->read(r->opaque, addr - r->base, size) : ~0ull);
		}
		rc = 0;
	} else if (!is_write) {
		/* Nothing decodes the address: the bus floats high. */
		memset(data, 0xff, size);
	}
	pthread_mutex_unlock(&vm->dev_lock);
	return rc;
}

int vm__pio(struct vm *vm, uint16_t port, int is_write, unsigned size, uint8_t *data)
{
	__atomic_fetch_add(&vm->nr_pio_exits, 1, __ATOMIC_RELAXED);
	return io_dispatch(vm, vm->pio, vm->nr_pio, port, is_write, size, data);
}

int vm__mmio(struct vm *vm, uint64_t gpa, int is_write, unsigned size, uint8_t *data)
{
	__atomic_fetch_add(&vm->nr_mmio_exits, 1, __ATOMIC_RELAXED);
	return io_dispatch(vm, vm->mmio, vm->nr_mmio, gpa, is_write, size, data);
}
