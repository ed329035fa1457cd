//! The VFS itself: SQLite's C interface, so this is the crate's one unsafe module.
//!
//! Every function here is called by SQLite with pointers it owns: the `sqlite3_file` it
//! allocated with our `szOsFile` bytes, buffers valid for the lengths it passes. A WAL file is
//! used by one connection, and a connection by one thread at a time, so a file's pending
//! buffer needs no lock.
#![allow(unsafe_code)]

use rusqlite::ffi;
use std::ffi::{CStr, c_char, c_int, c_void};
use std::ptr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The name connections open the VFS by.
const NAME: &CStr = c"palisade-wal";

/// Bytes gathered before they go out anyway. The unix VFS takes at most 128 KiB less a byte
/// per write (`seekAndWriteFd` masks the length to 17 bits), so a commit of ten one-KiB
/// deliveries, about 400 KiB, is four writes instead of some two hundred.
const PENDING_CAP: usize = 124 << 10;

/// Where the default VFS's file starts inside ours: after [`WalFile`], 8-byte aligned.
const INNER_OFFSET: usize = (size_of::<WalFile>() + 7) & !7;

/// Writes that reached the default VFS from WAL files through this VFS, since the process
/// started.
static WAL_WRITES: AtomicU64 = AtomicU64::new(0);

/// The registered VFS, or the SQLite error code that kept it from registering.
static REGISTERED: OnceLock<Result<(), c_int>> = OnceLock::new();

/// Registers the VFS once per process (it is not made the default) and returns the name to
/// open connections with, or SQLite's error code: no default VFS to wrap, or a refusal.
pub(crate) fn register() -> Result<&'static CStr, c_int> {
    let registered = REGISTERED.get_or_init(|| {
        // SAFETY: `sqlite3_vfs_find` initializes SQLite and returns a VFS that lives as long
        // as the process; the one registered here is leaked so that it does too.
        unsafe {
            let inner = ffi::sqlite3_vfs_find(ptr::null());
            if inner.is_null() {
                return Err(ffi::SQLITE_ERROR);
            }
            let vfs = Box::leak(Box::new(wrap(inner)));
            match ffi::sqlite3_vfs_register(vfs, 0) {
                ffi::SQLITE_OK => Ok(()),
                code => Err(code),
            }
        }
    });
    registered.map(|()| NAME)
}

/// How many writes WAL files opened through this VFS have made, in this process: with
/// gathering, about one per commit.
pub fn wal_writes() -> u64 {
    WAL_WRITES.load(Ordering::Relaxed)
}

/// A WAL file: the default VFS's file, and the writes not yet handed to it.
#[repr(C)]
struct WalFile {
    /// What SQLite sees; first, so that a `*mut sqlite3_file` is a `*mut WalFile`.
    base: ffi::sqlite3_file,
    /// The default VFS's file, stored in the same allocation at [`INNER_OFFSET`].
    inner: *mut ffi::sqlite3_file,
    /// Contiguous bytes not yet written, and the file offset of the first.
    pending: Vec<u8>,
    pending_at: i64,
}

/// Our VFS: the default one's, with our `xOpen` and room for a [`WalFile`] before its file.
fn wrap(inner: *mut ffi::sqlite3_vfs) -> ffi::sqlite3_vfs {
    // SAFETY: `inner` is the live default VFS.
    let base = unsafe { &*inner };
    ffi::sqlite3_vfs {
        // Version 2: the system-call overrides of version 3 exist for SQLite's own tests.
        iVersion: base.iVersion.min(2),
        szOsFile: c_int::try_from(INNER_OFFSET).unwrap_or(c_int::MAX) + base.szOsFile,
        mxPathname: base.mxPathname,
        pNext: ptr::null_mut(),
        zName: NAME.as_ptr(),
        pAppData: inner.cast(),
        xOpen: Some(open),
        xDelete: Some(delete),
        xAccess: Some(access),
        xFullPathname: Some(full_pathname),
        // The loadable-extension calls ignore their VFS argument in every built-in VFS, and
        // extensions are never loaded here.
        xDlOpen: base.xDlOpen,
        xDlError: base.xDlError,
        xDlSym: base.xDlSym,
        xDlClose: base.xDlClose,
        xRandomness: Some(randomness),
        xSleep: Some(sleep),
        xCurrentTime: Some(current_time),
        xGetLastError: Some(get_last_error),
        xCurrentTimeInt64: Some(current_time_int64),
        xSetSystemCall: None,
        xGetSystemCall: None,
        xNextSystemCall: None,
    }
}

/// The default VFS this one wraps.
///
/// # Safety
/// `vfs` is ours, registered by [`register`].
unsafe fn inner_vfs(vfs: *mut ffi::sqlite3_vfs) -> *mut ffi::sqlite3_vfs {
    // SAFETY: ours, so `pAppData` holds the default VFS.
    unsafe { (*vfs).pAppData.cast() }
}

unsafe extern "C" fn open(
    vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    // SAFETY: SQLite passes our VFS and a `szOsFile`-byte allocation for `file`.
    unsafe {
        let inner_vfs = inner_vfs(vfs);
        let Some(inner_open) = (*inner_vfs).xOpen else {
            (*file).pMethods = ptr::null();
            return ffi::SQLITE_CANTOPEN;
        };
        if flags & ffi::SQLITE_OPEN_WAL == 0 {
            // Not a WAL: the default VFS's file, at the start of the allocation, with its own
            // methods; ours is only bigger than it needs.
            return inner_open(inner_vfs, name, file, flags, out_flags);
        }
        let inner = file
            .cast::<u8>()
            .add(INNER_OFFSET)
            .cast::<ffi::sqlite3_file>();
        let rc = inner_open(inner_vfs, name, inner, flags, out_flags);
        if (*inner).pMethods.is_null() {
            // Nothing to close: SQLite will not call ours either.
            (*file).pMethods = ptr::null();
            return rc;
        }
        ptr::write(
            file.cast::<WalFile>(),
            WalFile {
                base: ffi::sqlite3_file {
                    pMethods: &WAL_METHODS,
                },
                inner,
                pending: Vec::new(),
                pending_at: 0,
            },
        );
        rc
    }
}

unsafe extern "C" fn delete(vfs: *mut ffi::sqlite3_vfs, name: *const c_char, sync: c_int) -> c_int {
    // SAFETY: our VFS; the default one's method with its own pointer.
    unsafe {
        let inner = inner_vfs(vfs);
        (*inner)
            .xDelete
            .map_or(ffi::SQLITE_IOERR_DELETE, |f| f(inner, name, sync))
    }
}

unsafe extern "C" fn access(
    vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    flags: c_int,
    out: *mut c_int,
) -> c_int {
    // SAFETY: as in `delete`.
    unsafe {
        let inner = inner_vfs(vfs);
        (*inner)
            .xAccess
            .map_or(ffi::SQLITE_IOERR_ACCESS, |f| f(inner, name, flags, out))
    }
}

unsafe extern "C" fn full_pathname(
    vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    n_out: c_int,
    out: *mut c_char,
) -> c_int {
    // SAFETY: as in `delete`.
    unsafe {
        let inner = inner_vfs(vfs);
        (*inner)
            .xFullPathname
            .map_or(ffi::SQLITE_CANTOPEN, |f| f(inner, name, n_out, out))
    }
}

unsafe extern "C" fn randomness(vfs: *mut ffi::sqlite3_vfs, n: c_int, out: *mut c_char) -> c_int {
    // SAFETY: as in `delete`.
    unsafe {
        let inner = inner_vfs(vfs);
        (*inner).xRandomness.map_or(0, |f| f(inner, n, out))
    }
}

unsafe extern "C" fn sleep(vfs: *mut ffi::sqlite3_vfs, micros: c_int) -> c_int {
    // SAFETY: as in `delete`.
    unsafe {
        let inner = inner_vfs(vfs);
        (*inner).xSleep.map_or(0, |f| f(inner, micros))
    }
}

unsafe extern "C" fn current_time(vfs: *mut ffi::sqlite3_vfs, out: *mut f64) -> c_int {
    // SAFETY: as in `delete`.
    unsafe {
        let inner = inner_vfs(vfs);
        (*inner)
            .xCurrentTime
            .map_or(ffi::SQLITE_ERROR, |f| f(inner, out))
    }
}

unsafe extern "C" fn get_last_error(
    vfs: *mut ffi::sqlite3_vfs,
    n: c_int,
    out: *mut c_char,
) -> c_int {
    // SAFETY: as in `delete`.
    unsafe {
        let inner = inner_vfs(vfs);
        (*inner).xGetLastError.map_or(0, |f| f(inner, n, out))
    }
}

unsafe extern "C" fn current_time_int64(vfs: *mut ffi::sqlite3_vfs, out: *mut i64) -> c_int {
    // SAFETY: as in `delete`; a version-1 default VFS has no such method.
    unsafe {
        let inner = inner_vfs(vfs);
        if (*inner).iVersion < 2 {
            return ffi::SQLITE_ERROR;
        }
        (*inner)
            .xCurrentTimeInt64
            .map_or(ffi::SQLITE_ERROR, |f| f(inner, out))
    }
}

/// The methods of a WAL file. Version 3, as the default VFS's files: the shared-memory and
/// memory-map methods are passed through (SQLite uses neither on a WAL).
static WAL_METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 3,
    xClose: Some(close),
    xRead: Some(read),
    xWrite: Some(write),
    xTruncate: Some(truncate),
    xSync: Some(sync),
    xFileSize: Some(file_size),
    xLock: Some(lock),
    xUnlock: Some(unlock),
    xCheckReservedLock: Some(check_reserved_lock),
    xFileControl: Some(file_control),
    xSectorSize: Some(sector_size),
    xDeviceCharacteristics: Some(device_characteristics),
    xShmMap: Some(shm_map),
    xShmLock: Some(shm_lock),
    xShmBarrier: Some(shm_barrier),
    xShmUnmap: Some(shm_unmap),
    xFetch: Some(fetch),
    xUnfetch: Some(unfetch),
};

/// The WAL file behind `file`.
///
/// # Safety
/// `file` was opened by [`open`] with [`WAL_METHODS`], and not yet closed.
unsafe fn wal<'a>(file: *mut ffi::sqlite3_file) -> &'a mut WalFile {
    // SAFETY: only `WAL_METHODS` call this, and only on files `open` wrote a `WalFile` to.
    unsafe { &mut *file.cast::<WalFile>() }
}

/// The default VFS's methods for the file under `w`.
fn methods(w: &WalFile) -> &ffi::sqlite3_io_methods {
    // SAFETY: `open` only wraps a file whose `pMethods` the default VFS set, and it stays set
    // until `close`.
    unsafe { &*(*w.inner).pMethods }
}

/// Hands the pending writes to the default VFS. They are dropped whatever the result: after
/// an error SQLite abandons the transaction, and writing them later would put stale bytes
/// after newer ones.
fn flush(w: &mut WalFile) -> c_int {
    if w.pending.is_empty() {
        return ffi::SQLITE_OK;
    }
    let rc = write_through(w, &w.pending, w.pending_at);
    w.pending.clear();
    rc
}

/// One write of `data` at `off` by the default VFS, counted in [`wal_writes`].
fn write_through(w: &WalFile, data: &[u8], off: i64) -> c_int {
    WAL_WRITES.fetch_add(1, Ordering::Relaxed);
    match (methods(w).xWrite, c_int::try_from(data.len())) {
        // SAFETY: the default VFS's write, on its file, with a buffer and its length.
        (Some(write), Ok(len)) => unsafe { write(w.inner, data.as_ptr().cast(), len, off) },
        _ => ffi::SQLITE_IOERR_WRITE,
    }
}

/// Runs `then` once the pending writes are out, or returns the flush's error.
fn flushed(w: &mut WalFile, then: impl FnOnce(&mut WalFile) -> c_int) -> c_int {
    match flush(w) {
        ffi::SQLITE_OK => then(w),
        rc => rc,
    }
}

unsafe extern "C" fn close(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: a WAL file; SQLite frees its memory after this returns, so the buffer is dropped
    // here, once.
    unsafe {
        let w = wal(file);
        let flushed = flush(w);
        let closed = methods(w).xClose.map_or(ffi::SQLITE_OK, |f| f(w.inner));
        ptr::drop_in_place(&mut w.pending);
        if flushed != ffi::SQLITE_OK {
            flushed
        } else {
            closed
        }
    }
}

unsafe extern "C" fn read(
    file: *mut ffi::sqlite3_file,
    buf: *mut c_void,
    n: c_int,
    off: i64,
) -> c_int {
    // SAFETY: a WAL file.
    let w = unsafe { wal(file) };
    flushed(w, |w| match methods(w).xRead {
        // SAFETY: SQLite's buffer of `n` bytes.
        Some(f) => unsafe { f(w.inner, buf, n, off) },
        None => ffi::SQLITE_IOERR_READ,
    })
}

unsafe extern "C" fn write(
    file: *mut ffi::sqlite3_file,
    buf: *const c_void,
    n: c_int,
    off: i64,
) -> c_int {
    // SAFETY: a WAL file, and SQLite's buffer of `n` bytes.
    let (w, data) = unsafe {
        let len = usize::try_from(n).unwrap_or(0);
        (wal(file), std::slice::from_raw_parts(buf.cast::<u8>(), len))
    };
    if !w.pending.is_empty() {
        // A write that continues the pending bytes, or rewrites some of them (SQLite rewrites
        // a frame of the open transaction in place), joins them.
        let at = usize::try_from(off - w.pending_at).ok();
        if let Some(at) = at.filter(|&at| at <= w.pending.len() && at + data.len() <= PENDING_CAP) {
            let overlap = data.len().min(w.pending.len() - at);
            w.pending[at..at + overlap].copy_from_slice(&data[..overlap]);
            w.pending.extend_from_slice(&data[overlap..]);
            return ffi::SQLITE_OK;
        }
        let rc = flush(w);
        if rc != ffi::SQLITE_OK {
            return rc;
        }
    }
    if data.len() >= PENDING_CAP {
        return write_through(w, data, off);
    }
    w.pending.reserve(PENDING_CAP);
    w.pending.extend_from_slice(data);
    w.pending_at = off;
    ffi::SQLITE_OK
}

unsafe extern "C" fn truncate(file: *mut ffi::sqlite3_file, size: i64) -> c_int {
    // SAFETY: a WAL file.
    let w = unsafe { wal(file) };
    flushed(w, |w| match methods(w).xTruncate {
        // SAFETY: the default VFS's method on its file.
        Some(f) => unsafe { f(w.inner, size) },
        None => ffi::SQLITE_IOERR_TRUNCATE,
    })
}

unsafe extern "C" fn sync(file: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    // SAFETY: a WAL file.
    let w = unsafe { wal(file) };
    flushed(w, |w| match methods(w).xSync {
        // SAFETY: the default VFS's method on its file.
        Some(f) => unsafe { f(w.inner, flags) },
        None => ffi::SQLITE_IOERR_FSYNC,
    })
}

unsafe extern "C" fn file_size(file: *mut ffi::sqlite3_file, out: *mut i64) -> c_int {
    // SAFETY: a WAL file.
    let w = unsafe { wal(file) };
    flushed(w, |w| match methods(w).xFileSize {
        // SAFETY: SQLite's out pointer, passed on.
        Some(f) => unsafe { f(w.inner, out) },
        None => ffi::SQLITE_IOERR_FSTAT,
    })
}

unsafe extern "C" fn lock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    // SAFETY: a WAL file; the default VFS's method on its file.
    unsafe {
        let w = wal(file);
        methods(w)
            .xLock
            .map_or(ffi::SQLITE_OK, |f| f(w.inner, level))
    }
}

unsafe extern "C" fn unlock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    // SAFETY: as in `lock`.
    unsafe {
        let w = wal(file);
        methods(w)
            .xUnlock
            .map_or(ffi::SQLITE_OK, |f| f(w.inner, level))
    }
}

unsafe extern "C" fn check_reserved_lock(file: *mut ffi::sqlite3_file, out: *mut c_int) -> c_int {
    // SAFETY: as in `lock`.
    unsafe {
        let w = wal(file);
        methods(w)
            .xCheckReservedLock
            .map_or(ffi::SQLITE_OK, |f| f(w.inner, out))
    }
}

unsafe extern "C" fn file_control(
    file: *mut ffi::sqlite3_file,
    op: c_int,
    arg: *mut c_void,
) -> c_int {
    // SAFETY: a WAL file.
    let w = unsafe { wal(file) };
    // Some controls look at the file (its size, its descriptor): they see every write.
    flushed(w, |w| match methods(w).xFileControl {
        // SAFETY: SQLite's argument, passed on.
        Some(f) => unsafe { f(w.inner, op, arg) },
        None => ffi::SQLITE_NOTFOUND,
    })
}

unsafe extern "C" fn sector_size(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: as in `lock`.
    unsafe {
        let w = wal(file);
        methods(w).xSectorSize.map_or(4096, |f| f(w.inner))
    }
}

unsafe extern "C" fn device_characteristics(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: as in `lock`.
    unsafe {
        let w = wal(file);
        methods(w).xDeviceCharacteristics.map_or(0, |f| f(w.inner))
    }
}

unsafe extern "C" fn shm_map(
    file: *mut ffi::sqlite3_file,
    page: c_int,
    size: c_int,
    extend: c_int,
    out: *mut *mut c_void,
) -> c_int {
    // SAFETY: as in `lock`.
    unsafe {
        let w = wal(file);
        methods(w).xShmMap.map_or(ffi::SQLITE_IOERR_SHMMAP, |f| {
            f(w.inner, page, size, extend, out)
        })
    }
}

unsafe extern "C" fn shm_lock(
    file: *mut ffi::sqlite3_file,
    offset: c_int,
    n: c_int,
    flags: c_int,
) -> c_int {
    // SAFETY: as in `lock`.
    unsafe {
        let w = wal(file);
        methods(w)
            .xShmLock
            .map_or(ffi::SQLITE_IOERR_SHMLOCK, |f| f(w.inner, offset, n, flags))
    }
}

unsafe extern "C" fn shm_barrier(file: *mut ffi::sqlite3_file) {
    // SAFETY: as in `lock`.
    unsafe {
        let w = wal(file);
        if let Some(f) = methods(w).xShmBarrier {
            f(w.inner);
        }
    }
}

unsafe extern "C" fn shm_unmap(file: *mut ffi::sqlite3_file, delete: c_int) -> c_int {
    // SAFETY: as in `lock`.
    unsafe {
        let w = wal(file);
        methods(w)
            .xShmUnmap
            .map_or(ffi::SQLITE_OK, |f| f(w.inner, delete))
    }
}

unsafe extern "C" fn fetch(
    file: *mut ffi::sqlite3_file,
    off: i64,
    n: c_int,
    out: *mut *mut c_void,
) -> c_int {
    // SAFETY: a WAL file.
    let w = unsafe { wal(file) };
    // A mapping shows the file's bytes, so it must see every write.
    flushed(w, |w| match methods(w).xFetch {
        // SAFETY: SQLite's out pointer, passed on.
        Some(f) => unsafe { f(w.inner, off, n, out) },
        None => {
            // SAFETY: SQLite's out pointer; no mapping means "read instead".
            unsafe { *out = ptr::null_mut() };
            ffi::SQLITE_OK
        }
    })
}

unsafe extern "C" fn unfetch(file: *mut ffi::sqlite3_file, off: i64, p: *mut c_void) -> c_int {
    // SAFETY: as in `lock`.
    unsafe {
        let w = wal(file);
        methods(w)
            .xUnfetch
            .map_or(ffi::SQLITE_OK, |f| f(w.inner, off, p))
    }
}
