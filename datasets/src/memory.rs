//! How the allocator and the kernel hold the large buffers that whole volumes live in.
//!
//! `analyze` reads case after case into buffers of tens of megabytes (a BraTS case is 71 MB of
//! float32 voxels) and frees them after it; every page the kernel maps for them costs a fault,
//! and 4 KiB pages cost 512 times as many as the 2 MiB ones it can use instead.

/// The size of a transparent huge page on x86-64 and most aarch64 kernels.
const HUGE_PAGE: usize = 2 << 20;

/// Makes glibc's allocator keep freed memory for the next allocation instead of returning it
/// to the kernel: one heap for all threads, no separate mapping for large blocks, no trimming.
///
/// By default glibc maps each large buffer on its own and unmaps it on free, so every case
/// faulted all its pages in again: about a fifth of the analyzer's CPU time on BraTS went to
/// the kernel. With the memory kept, minor faults fall to a third and the kernel's time to
/// under half, for a peak memory a little higher (340 against 280-300 MB on BraTS with 2
/// workers: freed blocks are not always reused).
///
/// Call it before any worker thread starts. It changes nothing where glibc refuses a setting
/// or is not the allocator.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; it is called before the worker threads
    // exist, and a refused setting leaves the default in place.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_MMAP_THRESHOLD, i32::MAX);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}

/// Asks the kernel to back the whole huge pages inside `buffer`'s allocation (its capacity)
/// with huge pages when they are first touched (`madvise(MADV_HUGEPAGE)`: the kernel's default
/// "madvise" mode gives them only to ranges that ask). Call it on a large buffer before writing
/// to it; pages already mapped keep their size. A hint: where the kernel has no huge pages,
/// nothing changes.
pub fn advise_huge_pages<T>(buffer: &Vec<T>) {
    let start = buffer.as_ptr() as usize;
    let end = start + buffer.capacity() * std::mem::size_of::<T>();
    let (lo, hi) = (
        start.next_multiple_of(HUGE_PAGE),
        end / HUGE_PAGE * HUGE_PAGE,
    );
    if hi <= lo {
        return;
    }
    #[cfg(target_os = "linux")]
    // SAFETY: the range lies inside `buffer`'s allocation, memory this process owns; MADV_HUGEPAGE changes
    // how the kernel backs it, never its contents.
    unsafe {
        libc::madvise(lo as *mut libc::c_void, hi - lo, libc::MADV_HUGEPAGE);
    }
}

/// `n` zeroed values, or `None` where the system refuses the memory (an allocation sized by
/// a file's header must be an error, never an abort). Zeroed pages come from the kernel
/// untouched, so a buffer costs memory only as it is written.
pub fn try_zeroed<T: bytemuck::Zeroable>(n: usize) -> Option<Vec<T>> {
    if n == 0 || std::mem::size_of::<T>() == 0 {
        return Some(Vec::new());
    }
    let layout = std::alloc::Layout::array::<T>(n).ok()?;
    // SAFETY: the layout is non-zero-sized; a non-null pointer from alloc_zeroed is an
    // allocation of `n` Ts with the global allocator's layout for them, all zero bytes, and a
    // zero bit pattern is a valid T (Zeroable), so a Vec may own it with length and capacity n.
    unsafe {
        let ptr = std::alloc::alloc_zeroed(layout) as *mut T;
        (!ptr.is_null()).then(|| Vec::from_raw_parts(ptr, n, n))
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// The VmFlags of the mapping holding `address`, from /proc/self/smaps.
    fn vm_flags_at(address: usize) -> Option<String> {
        let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
        let mut inside = false;
        for line in smaps.lines() {
            let range = line
                .split_whitespace()
                .next()
                .and_then(|r| r.split_once('-'));
            if let Some((lo, hi)) = range
                && let (Ok(lo), Ok(hi)) =
                    (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16))
            {
                inside = (lo..hi).contains(&address);
            } else if inside && let Some(flags) = line.strip_prefix("VmFlags:") {
                return Some(flags.to_string());
            }
        }
        None
    }

    #[test]
    fn a_large_buffer_asks_for_huge_pages_and_keeps_its_contents() {
        if !std::path::Path::new("/sys/kernel/mm/transparent_hugepage").exists() {
            return; // a kernel without transparent huge pages: nothing to ask
        }
        let buffer = vec![7u8; 3 * HUGE_PAGE];
        advise_huge_pages(&buffer);
        let inner = (buffer.as_ptr() as usize).next_multiple_of(HUGE_PAGE);
        let flags = vm_flags_at(inner).expect("the buffer's mapping in smaps");
        assert!(
            flags.split_whitespace().any(|f| f == "hg"),
            "VmFlags:{flags}"
        );
        assert!(buffer.iter().all(|&b| b == 7));
        // A buffer smaller than a huge page has none inside: nothing is asked, nothing breaks.
        advise_huge_pages(&vec![0u8; 4096]);
    }
}

/// The memory this process may use, in bytes: the machine's (`/proc/meminfo`'s MemTotal),
/// or its cgroup's limit (`/sys/fs/cgroup/memory.max`) where that is lower; `None` where
/// neither can be read (not Linux).
pub fn machine_memory_bytes() -> Option<u64> {
    let total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kb * 1024)
        });
    let limit = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(|text| text.trim().parse::<u64>().ok());
    match (total, limit) {
        (Some(t), Some(l)) => Some(t.min(l)),
        (t, l) => t.or(l),
    }
}
