package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// This file is the netlink transport. google/nftables' Conn serializes every
// object (see apply.go), but its Flush sends rules with NLM_F_ECHO and reads
// replies in a way that desynchronizes once the kernel's echoes fill more than
// one datagram, cannot run a batch without committing it (`nft --check`), and
// does not say which message failed. So the serialized messages are sent here,
// as one nfnetlink batch, exactly like nft does.

// nft message types and attributes that golang.org/x/sys/unix lacks.
const (
	nftMsgDestroyTable   = 26
	nftMsgDestroyChain   = 27
	nftMsgDestroyRule    = 28
	nftMsgDestroySet     = 29
	nftMsgDestroySetElem = 30
	nftMsgDestroyObj     = 31

	nftaTableHandle   = 4
	nftaTableUserdata = 6
	nftaChainUserdata = 12
	nftaChainFlags    = 10
	nftaSetHandle     = 16
	nftaObjHandle     = 6
	nftaObjUserdata   = 8
	nftaRuleUserdata  = 7
	nftaSetElemKeyEnd = 10
)

// nlSocket is a NETLINK_NETFILTER socket.
type nlSocket struct {
	fd  int
	seq uint32
}

func openNetlink() (*nlSocket, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
	if err != nil {
		return nil, fmt.Errorf("netlink socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("netlink bind: %w", err)
	}
	// Keep error acks small (no copy of the failed request) and ask for the
	// kernel's error message, if it has one.
	_ = unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_CAP_ACK, 1)
	_ = unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_EXT_ACK, 1)
	tv := unix.NsecToTimeval((10 * time.Second).Nanoseconds())
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	return &nlSocket{fd: fd, seq: uint32(time.Now().Unix())}, nil
}

func (s *nlSocket) close() { unix.Close(s.fd) }

// setBuffers sizes the socket buffers for a batch of n messages totalling
// size bytes (root may exceed the sysctl limits, as nft does).
func (s *nlSocket) setBuffers(size, n int) {
	snd := size + 64<<10
	rcv := n*1024 + 1<<20
	if unix.SetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, snd) != nil {
		_ = unix.SetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_SNDBUF, snd)
	}
	if unix.SetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcv) != nil {
		_ = unix.SetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcv)
	}
}

// marshal appends one netlink message (header, data, padding) to buf.
func marshal(buf []byte, typ netlink.HeaderType, flags netlink.HeaderFlags, seq uint32, data []byte) []byte {
	var h [16]byte
	binary.NativeEndian.PutUint32(h[0:4], uint32(16+len(data)))
	binary.NativeEndian.PutUint16(h[4:6], uint16(typ))
	binary.NativeEndian.PutUint16(h[6:8], uint16(flags))
	binary.NativeEndian.PutUint32(h[8:12], seq)
	buf = append(buf, h[:]...)
	buf = append(buf, data...)
	for len(buf)%4 != 0 {
		buf = append(buf, 0)
	}
	return buf
}

// nfgenmsg is the 4-byte header of every nfnetlink message.
func nfgenmsg(family byte, resID uint16) []byte {
	return []byte{family, unix.NFNETLINK_V0, byte(resID >> 8), byte(resID)}
}

// msgError is the kernel's answer to one message of a batch.
type msgError struct {
	index int // index into the batch's messages; -1 for the batch itself
	errno syscall.Errno
	text  string // extended ack message, if any
}

// runBatch sends msgs as one transaction. With commit false the batch has no
// end marker, so the kernel checks every message and then aborts it: that is
// how `nft --check` validates against the running kernel without changing it.
// It returns the errors the kernel reported, in message order.
func (s *nlSocket) runBatch(msgs []netlink.Message, commit bool) ([]msgError, error) {
	begin := s.seq
	seqIndex := map[uint32]int{}
	buf := marshal(nil, unix.NFNL_MSG_BATCH_BEGIN, netlink.Request, begin, nfgenmsg(unix.AF_UNSPEC, unix.NFNL_SUBSYS_NFTABLES))
	acks := 0
	for i, m := range msgs {
		s.seq++
		seqIndex[s.seq] = i
		flags := m.Header.Flags | netlink.Acknowledge
		flags &^= unix.NLM_F_ECHO
		buf = marshal(buf, m.Header.Type, flags, s.seq, m.Data)
		acks++
	}
	s.seq++
	end := s.seq
	if commit {
		buf = marshal(buf, unix.NFNL_MSG_BATCH_END, netlink.Request, end, nfgenmsg(unix.AF_UNSPEC, unix.NFNL_SUBSYS_NFTABLES))
	}
	s.seq++
	s.setBuffers(len(buf), len(msgs))
	if err := unix.Sendto(s.fd, buf, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, fmt.Errorf("netlink send: %w", err)
	}
	var errs []msgError
	rbuf := make([]byte, 1<<20)
	for acks > 0 {
		n, _, err := unix.Recvfrom(s.fd, rbuf, 0)
		if err != nil {
			if errors.Is(err, unix.EAGAIN) {
				return errs, fmt.Errorf("netlink: timed out waiting for %d acknowledgements", acks)
			}
			return errs, fmt.Errorf("netlink receive: %w", err)
		}
		replies, err := syscall.ParseNetlinkMessage(rbuf[:n])
		if err != nil {
			return errs, fmt.Errorf("netlink: %w", err)
		}
		for _, r := range replies {
			if r.Header.Type != unix.NLMSG_ERROR {
				continue
			}
			errno, text := parseAck(r)
			idx, ok := seqIndex[r.Header.Seq]
			if !ok {
				// An error for the batch markers fails the whole batch
				// (for example EPERM without CAP_NET_ADMIN).
				if errno != 0 && (r.Header.Seq == begin || r.Header.Seq == end) {
					return append(errs, msgError{index: -1, errno: errno, text: text}), nil
				}
				continue
			}
			delete(seqIndex, r.Header.Seq)
			acks--
			if errno != 0 {
				errs = append(errs, msgError{index: idx, errno: errno, text: text})
			}
		}
	}
	return errs, nil
}

// parseAck returns the errno of an NLMSG_ERROR message and its extended-ack
// text (NLMSGERR_ATTR_MSG), if present.
func parseAck(m syscall.NetlinkMessage) (syscall.Errno, string) {
	if len(m.Data) < 4 {
		return 0, ""
	}
	errno := syscall.Errno(-int32(binary.NativeEndian.Uint32(m.Data[:4])))
	if m.Header.Flags&unix.NLM_F_ACK_TLVS == 0 || len(m.Data) < 20 {
		return errno, ""
	}
	off := 20 // error code + capped copy of the request header
	if m.Header.Flags&unix.NLM_F_CAPPED == 0 && len(m.Data) >= 8 {
		off = 4 + int(binary.NativeEndian.Uint32(m.Data[4:8]))
	}
	if off > len(m.Data) {
		return errno, ""
	}
	attrs, err := netlink.UnmarshalAttributes(m.Data[off:])
	if err != nil {
		return errno, ""
	}
	for _, a := range attrs {
		if a.Type == unix.NLMSGERR_ATTR_MSG {
			return errno, string(trimNUL(a.Data))
		}
	}
	return errno, ""
}

func trimNUL(b []byte) []byte {
	for len(b) > 0 && b[len(b)-1] == 0 {
		b = b[:len(b)-1]
	}
	return b
}

// dump runs an nf_tables GET dump (msgType is NFT_MSG_GET*) and returns the
// attribute payloads (after the nfgenmsg header) of the replies.
func (s *nlSocket) dump(msgType uint16, family byte, attrs []netlink.Attribute) ([][]byte, error) {
	data, err := netlink.MarshalAttributes(attrs)
	if err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		s.seq++
		seq := s.seq
		req := marshal(nil, netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8|msgType),
			netlink.Request|netlink.Dump, seq, append(nfgenmsg(family, 0), data...))
		if err := unix.Sendto(s.fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
			return nil, fmt.Errorf("netlink send: %w", err)
		}
		out, interrupted, err := s.receiveDump(seq)
		if err != nil || !interrupted || attempt == 5 {
			return out, err
		}
	}
}

func (s *nlSocket) receiveDump(seq uint32) (out [][]byte, interrupted bool, err error) {
	rbuf := make([]byte, 1<<20)
	for {
		n, _, err := unix.Recvfrom(s.fd, rbuf, 0)
		if err != nil {
			return nil, false, fmt.Errorf("netlink receive: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(rbuf[:n])
		if err != nil {
			return nil, false, fmt.Errorf("netlink: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Seq != seq {
				continue
			}
			if m.Header.Flags&unix.NLM_F_DUMP_INTR != 0 {
				interrupted = true
			}
			switch m.Header.Type {
			case unix.NLMSG_DONE:
				return out, interrupted, nil
			case unix.NLMSG_ERROR:
				if errno, _ := parseAck(m); errno != 0 {
					return nil, false, errno
				}
				return out, interrupted, nil
			}
			if len(m.Data) >= 4 {
				out = append(out, append([]byte(nil), m.Data[4:]...)) // rbuf is reused
			}
		}
	}
}
