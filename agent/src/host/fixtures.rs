//! Real `/proc` file contents copied from a 2-CPU test VM (Linux 6.x), used by the
//! parser tests and written into temporary proc roots by the collector tests.

pub const PROC_STAT: &str = "cpu  48419 0 3811 43184 262 0 69 28 0 0
cpu0 24109 0 1671 22030 60 0 6 12 0 0
cpu1 24309 0 2140 21154 202 0 62 16 0 0
intr 298135 0 0 0 0 0 0 0 0
ctxt 392898
btime 1795446796
processes 11890
procs_running 4
procs_blocked 0
softirq 185402 1 41313 4 4573 3877 0 16 76436 0 59182
";

pub const MEMINFO: &str = "MemTotal:       24684084 kB
MemFree:        21695352 kB
MemAvailable:   23780176 kB
Buffers:           29080 kB
Cached:          2209024 kB
SwapCached:            0 kB
Active:           786428 kB
Inactive:        1882360 kB
Shmem:              8872 kB
KReclaimable:     137988 kB
Slab:             166220 kB
SReclaimable:     137988 kB
SUnreclaim:        28232 kB
HugePages_Total:       0
Hugepagesize:       2048 kB
";

pub const LOADAVG: &str = "2.85 1.51 0.63 4/114 11873\n";

pub const MOUNTS: &str = "proc /proc proc rw,relatime 0 0
sysfs /sys sysfs rw,relatime 0 0
devtmpfs /dev devtmpfs rw,relatime,size=12334460k,nr_inodes=3083615,mode=755 0 0
tmpfs /dev/shm tmpfs rw,relatime,size=24684084k 0 0
devpts /dev/pts devpts rw,relatime,mode=600,ptmxmode=000 0 0
/dev/vda / ext4 rw,relatime,discard,resv_strict,resuid=65534,resgid=65534 0 0
model_tools_unavailable /mnt/sandboxing/model_tools_env/v1/python tmpfs ro,nosuid,nodev,relatime,size=4k,mode=755 0 0
devpts /dev/pts devpts rw,relatime,mode=600,ptmxmode=000 0 0
tmpfs /dev/shm tmpfs rw,relatime,size=24684084k 0 0
tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0
cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0
cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0
overlay /var/lib/docker/overlay2/abc/merged overlay rw,relatime,lowerdir=/l,upperdir=/u,workdir=/w 0 0
/dev/sdb1 /mnt/my\\040data ext4 ro,relatime 0 0
";

pub const DISKSTATS: &str = "   7       0 loop0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
   7       1 loop1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
 254       0 vda 50776 8330 4048274 37971 9717 34654 4559544 23913 0 6484 62455 4788 37 450992 512 1051 56
 253       0 zram0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
   1       0 ram0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
   8       1 sda1 120 3 2048 40 10 2 96 12 1 30 52
";

pub const NET_DEV: &str = "Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:    3193      29    0    0    0     0          0         0     3193      29    0    0    0     0       0          0
  ifb0:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0
  eth0: 195493641    7633    3    7    0     0          0         0   540705    4861    1    2    0     0       0          0
";

/// `/proc/self/stat` of a process named `sightline agent` (note the space and parenthesis
/// handling: the command name is everything between the first `(` and the last `)`).
pub const SELF_STAT: &str = "11878 (sightline) agent) S 11867 11867 6811 0 -1 4194304 95 0 0 0 250 75 0 0 20 0 1 0 48107 3133440 354 18446744073709551615 94062038601728 94062038621609 140724178159392 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 94062038637616 94062038639232 94062802522112 140724178160354 140724178160374 140724178160374 140724178161643 0
";
