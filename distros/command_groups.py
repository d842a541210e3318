# Values are tuples (Pants needs hashable prelude values); *_NAMES are (import path,
# name) pairs for `command_names=dict(...)`.
#
# Command groups shared by the distro profiles under distros/.
#
# Pants reads this file before every BUILD file ([GLOBAL].build_file_prelude_globs
# in pants.toml), so a profile's BUILD file can say
#
#     commands = UROOT_CORE + KINE + CONTROL_PLANE + NODE + CONTAINERD + COREDNS
#
# the way mkuimage's templates name command sets. Each group is a list of Go
# import paths as go_busybox's `commands` takes them; the versions come from the
# go.mod of the profile that uses them. *_LDFLAGS set version strings that
# upstream sets from its Makefiles; *_PATCH are the pure-Go changes this repo
# makes to upstream modules (see distros/patches/README.md).

# u-root's core commands: init, the gosh shell, mount, ip, insmod, ...
UROOT_CORE = ("github.com/u-root/u-root/cmds/core/*",)
# The part of them a node image carries: only what the node executes (README "What a
# node image carries"). No shell, no sshd/scp, strace, kexec, msr, io: nothing on the
# node runs them, and an appliance is operated through kubectl (logs, snapshots).
#   init      u-root's init: PID 1, runs k4s-node as its uinit
#   dhclient  k4s-node configures the network with it (system.go)
#   ip        k4s-node: lo and the cluster DNS address, the LAN address (system.go, cmdline.go)
#   mount     the kubelet mounts volumes (tmpfs for Secrets, projected tokens, bind
#             mounts) by executing it (k8s.io/mount-utils); containerd's mount helpers
#   umount    the kubelet unmounts them the same way
UROOT_NODE_CORE = (
    "github.com/u-root/u-root/cmds/core/init",
    "github.com/u-root/u-root/cmds/core/dhclient",
    "github.com/u-root/u-root/cmds/core/ip",
    "github.com/u-root/u-root/cmds/core/mount",
    "github.com/u-root/u-root/cmds/core/umount",
)

# Datastores.
KINE = ("github.com/k3s-io/kine",)  # etcd API over SQLite (pure-Go modernc SQLite)
ETCD = ("go.etcd.io/etcd/server/v3",)  # named "etcd" by ETCD_NAMES
ETCDCTL = ("go.etcd.io/etcd/etcdctl/v3",)
ETCD_NAMES = (("go.etcd.io/etcd/server/v3", "etcd"),)

# Kubernetes control plane and node.
KUBE_APISERVER = ("k8s.io/kubernetes/cmd/kube-apiserver",)
KUBE_SCHEDULER = ("k8s.io/kubernetes/cmd/kube-scheduler",)
KUBE_CONTROLLER_MANAGER = ("k8s.io/kubernetes/cmd/kube-controller-manager",)
CONTROL_PLANE = KUBE_APISERVER + KUBE_SCHEDULER + KUBE_CONTROLLER_MANAGER
KUBELET = ("k8s.io/kubernetes/cmd/kubelet",)
KUBE_PROXY = ("k8s.io/kubernetes/cmd/kube-proxy",)
NODE = KUBELET + KUBE_PROXY
KUBECTL = ("k8s.io/kubernetes/cmd/kubectl",)
CRICTL = ("sigs.k8s.io/cri-tools/cmd/crictl",)

# Container runtime: containerd, its runc shim, and runc.
CONTAINERD = (
    "github.com/containerd/containerd/v2/cmd/containerd",
    "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2",
)
RUNC = ("github.com/opencontainers/runc",)
CONTAINER_RUNTIME = CONTAINERD + RUNC

# Networking and DNS.
FLANNEL = ("github.com/flannel-io/flannel",)  # named "flanneld" by FLANNEL_NAMES
FLANNEL_NAMES = (("github.com/flannel-io/flannel", "flanneld"),)
KUBE_ROUTER = ("github.com/cloudnativelabs/kube-router/v2/cmd/kube-router",)
CNI_PLUGINS = (
    "github.com/containernetworking/plugins/plugins/main/bridge",
    "github.com/containernetworking/plugins/plugins/main/loopback",
    "github.com/containernetworking/plugins/plugins/ipam/host-local",
)
COREDNS = ("github.com/coredns/coredns",)
# NetworkPolicy on every node profile (docs/appliance.md "NetworkPolicy"): kube-network-policies,
# pure Go (nftables over netlink, NFQUEUE), run by k4s-node on the host; named
# "kube-network-policies" by KUBE_NETWORK_POLICIES_NAMES (upstream's main package is `cmd`).
KUBE_NETWORK_POLICIES = ("sigs.k8s.io/kube-network-policies/cmd",)
KUBE_NETWORK_POLICIES_NAMES = (("sigs.k8s.io/kube-network-policies/cmd", "kube-network-policies"),)

# The appliance's first-party commands (node/, the local module k4s.dev/node):
# the node supervisor k4s-node (u-root's uinit; starts the initramfs' `node_components`)
# and the pure-Go `nft` that kube-proxy's and flannel's nftables modes run. A profile
# that lists them replaces k4s.dev/node with ../../node in go.mod and sets
# `local_modules=NODE_LOCAL_MODULES`.
K4S_NODE = ("k4s.dev/node/cmd/k4s-node", "k4s.dev/node/cmd/nft")
NODE_LOCAL_MODULES = ("//node",)

# The pods' images, carried in the initramfs (no registry): distros/pod-images, one
# `oci_image` per architecture (`:pause` and `:demo` for amd64, `:pause-arm64`, ...).
def arch_suffix(goarch):
    """The suffix of a target name for `goarch`: none for amd64, `-arm64` for arm64."""
    return "" if goarch == "amd64" else "-" + goarch


def pod_images(goarch="amd64"):
    """The pod images (containerd's sandbox image and the demo server) for `goarch`."""
    return ["//distros/pod-images:pause" + arch_suffix(goarch), "//distros/pod-images:demo" + arch_suffix(goarch)]

# The images of the upstream Kubernetes conformance suite (docs/conformance.md), under
# the names its KUBE_TEST_REPO_LIST remaps to k4s.local: distros/e2e-images.
CONFORMANCE_IMAGES = tuple(
    f"//distros/e2e-images:e2e-{name}"
    for name in ("agnhost", "agnhost-prev", "busybox", "pause", "nonroot", "nautilus")
) + ("//distros/e2e-images/nnp:e2e-nonewprivs",)
# Not carried: //distros/e2e-images:e2e-kitten (its one Conformance test, Image Volume,
# pulls it with policy Always, which needs a registry, and reads Alpine's os-release).

# Kernel modules an appliance node loads (k4s-node, at boot): virtio for QEMU; overlay,
# bridge, veth and br_netfilter for containers and the CNI bridge; nf_tables and the
# nft expressions kube-proxy's and flannel's nftables modes use, for IPv4 and IPv6;
# nf_conntrack_netlink, through which kube-proxy clears stale UDP conntrack entries.
NODE_KERNEL_MODULES = (
    "virtio_pci", "virtio_net", "overlay", "bridge", "br_netfilter", "veth",
    "nf_tables", "nft_ct", "nft_nat", "nft_chain_nat", "nft_masq", "nft_numgen",
    "nft_fib_ipv4", "nft_fib_ipv6", "nft_fib_inet", "nft_reject_ipv4", "nft_reject_ipv6",
    "nft_reject_inet", "nf_conntrack_netlink",
    # kube-network-policies: new connections of pods a NetworkPolicy selects go to
    # its NFQUEUE (the nft `queue` expression and the queue's netlink interface).
    "nft_queue", "nfnetlink_queue",
    # The data disk (k4s-node disk.go): a virtio disk, ext4 (jbd2, mbcache, crc16 and
    # its softdep crc32c come with it from modules.dep / modules.softdep).
    "virtio_blk", "ext4",
    # The ACPI power button as an input device k4s-node reads (orderly shutdown).
    "button", "evdev",
)
# flannel's VXLAN backend (the flannel.1 device).
VXLAN_KERNEL_MODULES = ("vxlan",)
# Where Debian's arm64 kernel differs (its /boot/config): the ACPI button driver is built
# in (CONFIG_ACPI_BUTTON=y), so `button` is no module there; and QEMU's virt machine,
# booted with a device tree, reports its power button through gpio-keys on its PL061
# (CONFIG_GPIO_PL061=y, CONFIG_KEYBOARD_GPIO=m), which k4s-node reads like the ACPI one.
ARM64_BUILTIN_KERNEL_MODULES = ("button",)
ARM64_KERNEL_MODULES = ("gpio_keys",)

# What a worker (k3s' agent, Talos' worker) runs: the node's part of a component table.
WORKER_COMPONENTS = ("containerd", "kubelet", "flanneld", "kube-proxy", "kube-network-policies")


# The kernel every image is built for and boots (`linux_kernel`): Debian's, pinned by
# package, version and sha256 per architecture (distros/kernel/BUILD).
KERNEL = "//distros/kernel:debian"
# systemd's UEFI stub, pinned the same way (distros/kernel/BUILD): the front of a UKI.
UEFI_STUB = "//distros/kernel:systemd-stub"


def node_uki(initramfs=":initramfs", name="uki"):
    """`:uki`: the image `initramfs` as one UEFI executable (a Unified Kernel Image:
    systemd's stub, the pinned kernel, the cpio and the kernel command line),
    `<initramfs stem>.efi` in dist/, for a machine's EFI system partition
    (docs/how-it-works.md, "Booting on a machine"). A target of its own, not a
    `pants package` output of `:initramfs`: it holds a second copy of the cpio."""
    uki(name=name, initramfs=initramfs, uefi_stub=UEFI_STUB)



def node_appliance(components, kernel_modules=NODE_KERNEL_MODULES, server=True, memory=1024, data_disk=None):
    """The `initramfs` fields of an image that boots as a node: u-root's init runs
    k4s-node, which loads `kernel_modules` and starts `components` in order (the
    distro's component table, each checked at build time to be a command of the
    busybox); the pods' images without a registry; no shell (no console login); a
    cluster identity handed over by `pants run` (the image holds no key), whose admin
    kubeconfig reaches the apiserver through host port 6443 and the datastore snapshot
    endpoint through 6444 (`server=False`: a worker, which has neither). `data_disk`: the
    block device that holds the node's state (`/dev/vda`, or `LABEL=k4s-data` once
    formatted), formatted by the node when empty and never when it holds data (k4s.disk=;
    default: none, the state is RAM; `pants run <target> -- -disk <image>` attaches one
    either way). Use as
    `initramfs(name=..., busybox=..., **node_appliance([...]))`."""
    if data_disk is not None and (not isinstance(data_disk, str) or not data_disk.strip()
                                  or any(c.isspace() for c in data_disk)):
        raise ValueError(
            f"k4s: E_BAD_FIELD: node_appliance(data_disk={data_disk!r}) in this BUILD file: want a "
            "device path such as '/dev/vda' or 'LABEL=k4s-data' (one word: it goes on the kernel "
            "command line as k4s.disk=); fix the value or leave data_disk out (state in RAM)"
        )
    return dict(
        node_components=list(components),
        images=pod_images(),
        cluster_identity=True,
        init="init",
        uinit="k4s-node",
        shell="",
        kernel_modules=list(kernel_modules),
        linux_kernel=KERNEL,
        # `pants run`'s RAM (MiB), which the slow tests use too: a node is Ready and runs
        # their workloads in it (tests/test_appliance.py); more RAM makes it faster.
        vm_memory=memory,
        # kube-apiserver, and k4s-node's datastore snapshots (mTLS, system:masters only:
        # `pants run <target> -- -snapshot FILE`).
        vm_port_forwards=["6443:6443", "6444:6444"] if server else [],
        # u-root's init mounts cgroup v1 hierarchies; the cpu controller stays bound to
        # v1 after k4s-node unmounts them, and the kubelet needs it on cgroup v2.
        kernel_args=["cgroup_no_v1=all"] + ([f"k4s.disk={data_disk}"] if data_disk else []),
    )


def conformance_image(appliance, busybox=":bb@goarch=amd64", memory=3072):
    """`:initramfs-conformance`: the node `appliance` (a `node_appliance(...)` dict) that
    also carries the conformance suite's images (CONFORMANCE_IMAGES), for
    benchmarks/conformance.py; `pants run` gives it `memory` MiB (the suite's pods and
    the images unpacked into containerd). Budget CONFORMANCE_CPIO_BUDGET: the images are
    a test fixture, not part of the appliance's 200 MiB."""
    initramfs(
        name="initramfs-conformance",
        busybox=busybox,
        max_size=CONFORMANCE_CPIO_BUDGET,
        **dict(
            appliance,
            images=list(appliance["images"]) + list(CONFORMANCE_IMAGES),
            vm_memory=max(appliance["vm_memory"], memory),
        ),
    )


def shell_images(max_size, flash_max_size, busybox=":bb@goarch=amd64"):
    """`:initramfs`, the busybox booting u-root's init to a gosh shell, and
    `:initramfs-xz`, the same image xz-compressed (CRC32 checks, as the kernel wants)
    for a flash part."""
    initramfs(name="initramfs", busybox=busybox, init="init", shell="gosh", max_size=max_size, linux_kernel=KERNEL)
    initramfs(
        name="initramfs-xz", busybox=busybox, init="init", shell="gosh", compression="xz",
        max_size=flash_max_size, linux_kernel=KERNEL,
    )


def arm64_shell_image():
    """`:initramfs-arm64` of a profile that is not a node: its arm64 `bb`
    (`:bb@goarch=arm64`) booting u-root's init to a gosh shell."""
    initramfs(
        name="initramfs-arm64",
        busybox=":bb@goarch=arm64",
        init="init",
        shell="gosh",
        max_size=CPIO_BUDGET,
        linux_kernel=KERNEL,
    )


def arm64_node_image(appliance):
    """`:initramfs-arm64`: the profile's node (`appliance`, what `node_appliance` returned
    for its `:initramfs`) for arm64: the profile's `bb` built for arm64
    (`:bb@goarch=arm64`), the arm64 package of the same pinned kernel and its modules
    (`linux_kernel` picks the package by the busybox's GOARCH; the node's modules less
    those built into it, plus the virt machine's power button), and the arm64 pod images.
    `pants run` boots it under qemu-system-aarch64 (`-machine virt -cpu max`, console
    ttyAMA0; docs/appliance.md "arm64")."""
    modules = [m for m in appliance["kernel_modules"] if m not in ARM64_BUILTIN_KERNEL_MODULES]
    initramfs(
        name="initramfs-arm64",
        busybox=":bb@goarch=arm64",
        max_size=CPIO_BUDGET,
        **dict(appliance, images=pod_images("arm64"), kernel_modules=modules + list(ARM64_KERNEL_MODULES)),
    )


# Pure-Go changes to upstream modules, as go_busybox `patches`.
FLANNEL_PATCH = "//distros/patches/flannel-purego.patch"
# flanneld in nftables mode on a node without iptables (the k3s-like and talos-like nodes).
FLANNEL_NFTABLES_PATCH = "//distros/patches/flannel-nftables-only.patch"
COREDNS_PATCH = "//distros/patches/coredns-flags.patch"
RUNC_PATCHES = (
    "//distros/patches/runc-purego.patch",
    "//distros/patches/runc-seccomp-purego.patch",
)
CONTAINERD_PATCHES = (
    "//distros/patches/containerd-busybox-self.patch",
    "//distros/patches/containerd-shim-plugins.patch",
)
# kube-network-policies with a --kubeconfig (upstream reads only its Pod's service account).
KUBE_NETWORK_POLICIES_PATCH = "//distros/patches/kube-network-policies-kubeconfig.patch"
KUBE_ROUTER_PATCHES = (
    "//distros/patches/kube-router-flags.patch",
    # kube-router's router without iptables/ipset; its GoBGP API on 127.0.0.1 only.
    "//distros/patches/kube-router-route-only.patch",
)

# Size cuts for flash images: build tags that leave out what an appliance never
# configures, each with the patch that defines its tag where upstream has none.
# README "Image size" has the saving of each (bb bytes before/after).
#   CoreDNS with only a cluster DNS's plugins (kubernetes, forward, cache, errors,
#   health, ready, loop, reload, loadbalance, hosts, log, metrics, acl, bind, whoami).
COREDNS_CLUSTER_TAGS = ("k4s_coredns_cluster",)
COREDNS_CLUSTER_PATCH = "//distros/patches/coredns-cluster-plugins.patch"
#   kine with only its (pure-Go) SQLite driver: no PostgreSQL, MySQL, NATS, T4, S3.
KINE_SQLITE_TAGS = ("k4s_kine_sqlite",)
KINE_SQLITE_PATCH = "//distros/patches/kine-sqlite-only.patch"
#   containerd without the devmapper and ZFS snapshotters and its OTLP tracing plugin
#   (upstream's own tags; the appliance uses overlayfs).
CONTAINERD_TRIM_TAGS = ("no_devmapper", "no_zfs", "no_tracing")
#   containerd's NRI without its WebAssembly plugin runtime (wazero; upstream's own tag:
#   NRI plugins as processes over ttrpc still work, and none is configured).
CONTAINERD_NO_WASM_TAGS = ("nri_no_wasm",)
#   kube-router without the AWS SDK (only used to turn off EC2's source/destination
#   check on AWS instances).
KUBE_ROUTER_NO_AWS_TAGS = ("k4s_kube_router_no_aws",)
KUBE_ROUTER_NO_AWS_PATCH = "//distros/patches/kube-router-no-aws.patch"

# Version strings (-X) that upstream Makefiles set. Keep them equal to go.mod.
K8S_VERSION = "v1.37.2"
K8S_LDFLAGS = (
    "-X k8s.io/component-base/version.gitVersion=" + K8S_VERSION,
    "-X k8s.io/component-base/version.gitMajor=1",
    "-X k8s.io/component-base/version.gitMinor=37",
    "-X k8s.io/component-base/version.gitTreeState=clean",
    "-X k8s.io/client-go/pkg/version.gitVersion=" + K8S_VERSION,
    "-X k8s.io/client-go/pkg/version.gitMajor=1",
    "-X k8s.io/client-go/pkg/version.gitMinor=37",
)
KINE_LDFLAGS = ("-X github.com/k3s-io/kine/pkg/version.Version=v0.17.5",)
CONTAINERD_LDFLAGS = ("-X github.com/containerd/containerd/v2/version.Version=v2.4.2",)
FLANNEL_LDFLAGS = ("-X github.com/flannel-io/flannel/pkg/version.Version=v0.28.10",)
CRICTL_LDFLAGS = ("-X sigs.k8s.io/cri-tools/pkg/version.Version=v1.37.0",)
CNI_LDFLAGS = (
    "-X github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion=v1.10.0",
)
KUBE_ROUTER_LDFLAGS = ("-X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=v2.1.0",)
# go_busybox's default ldflags, which a profile's `ldflags` replaces.
STRIP = ("-s", "-w")

# The architectures every profile is built for.
ARCHES = ("amd64", "arm64")

# Size budgets (initramfs `max_size`; a bigger image fails the build with what to cut).
# A Kubernetes profile's flash image fits 40 MiB: a 64 MiB part keeps room for a
# kernel, or for a second (A/B) image with a small kernel. The uncompressed images,
# which the kernel unpacks into RAM, stay under 200 MiB.
FLASH_BUDGET = "40MiB"
CPIO_BUDGET = "200MiB"
# A node with the conformance suite's images (conformance_image): k3s-like 265 MiB with
# four images (measured); nonroot and nautilus add about 20 MB each (e2e-bb's layer),
# nonewprivs about 1 MB: about 305 MiB (k0s-like, the biggest node, about 312 MiB).
CONFORMANCE_CPIO_BUDGET = "320MiB"
