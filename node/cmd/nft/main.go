package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"unicode"
)

// options are nft's command-line flags that this implementation knows.
type options struct {
	check, json, terse, handle, version bool
	file                                string
	hasFile                             bool
}

const usage = `Usage: nft [ options ] [ cmds... ]

Options (a subset of nft's; see the package documentation):
  -h, --help          Show this help
  -v, --version       Show version information
  -f, --file <file>   Read input from <file> ("-" for stdin)
  -c, --check         Check commands validity without actually applying the changes
  -j, --json          Format output in JSON
  -t, --terse         Omit contents of sets
  -a, --handle        Output rule handle
  -n, -s, -N, -p, -y  Accepted and ignored
`

// parseArgs parses flags up to the first command word (later words, such as
// "priority -100", are never taken for flags).
func parseArgs(args []string) (options, []string, error) {
	var o options
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return o, args[i+1:], nil
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			return o, args[i:], nil
		}
		takeValue := func(name string) (string, error) {
			if v, ok := strings.CutPrefix(a, name+"="); ok && strings.HasPrefix(a, "--") {
				return v, nil
			}
			if i+1 >= len(args) {
				return "", fmt.Errorf("option %s requires an argument", name)
			}
			i++
			return args[i], nil
		}
		long := map[string]byte{
			"--check": 'c', "--json": 'j', "--terse": 't', "--handle": 'a', "--version": 'v',
			"--version-long": 'V', "--help": 'h', "--numeric": 'n', "--stateless": 's',
			"--reversedns": 'N', "--numeric-protocol": 'p', "--numeric-priority": 'y', "--echo": 'e',
		}
		if strings.HasPrefix(a, "--") {
			name, _, _ := strings.Cut(a, "=")
			switch name {
			case "--file":
				v, err := takeValue("--file")
				if err != nil {
					return o, nil, err
				}
				o.file, o.hasFile = v, true
				continue
			case "--debug", "--includepath":
				if _, err := takeValue(name); err != nil {
					return o, nil, err
				}
				continue
			}
			letter, ok := long[name]
			if !ok {
				return o, nil, fmt.Errorf("unrecognized option %q", a)
			}
			a = "-" + string(letter)
		}
		for j := 1; j < len(a); j++ {
			switch a[j] {
			case 'c':
				o.check = true
			case 'j':
				o.json = true
			case 't':
				o.terse = true
			case 'a':
				o.handle = true
			case 'v', 'V':
				o.version = true
			case 'h':
				return o, nil, errHelp
			case 'n', 's', 'N', 'p', 'y':
			case 'e':
				return o, nil, fmt.Errorf("--echo is not supported")
			case 'f', 'I', 'd':
				v := a[j+1:]
				if v == "" {
					if i+1 >= len(args) {
						return o, nil, fmt.Errorf("option -%c requires an argument", a[j])
					}
					i++
					v = args[i]
				}
				if a[j] == 'f' {
					o.file, o.hasFile = v, true
				}
				j = len(a)
			default:
				return o, nil, fmt.Errorf("unrecognized option -%c", a[j])
			}
		}
	}
	return o, nil, nil
}

var errHelp = errors.New("help")

// errnoError is an error the kernel (or an equivalent check) reported as an
// errno. Its text starts with the C library's message for the errno, because
// knftables classifies nft's errors by "No such file or directory" and
// "File exists".
type errnoError struct {
	errno syscall.Errno
	msg   string
}

func errnoErr(errno syscall.Errno, msg string) error { return &errnoError{errno: errno, msg: msg} }

func (e *errnoError) Error() string {
	if e.msg == "" {
		return strerror(e.errno)
	}
	return strerror(e.errno) + " (" + e.msg + ")"
}

// strerror returns the glibc text for an errno (Go's is lower-case).
func strerror(errno syscall.Errno) string {
	s := []rune(errno.Error())
	if len(s) > 0 {
		s[0] = unicode.ToUpper(s[0])
	}
	return string(s)
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run is the whole command; it returns the exit status.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	opts, words, err := parseArgs(args)
	if errors.Is(err, errHelp) {
		fmt.Fprint(stdout, usage)
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "Error: %v\n\n%s", err, usage)
		return 1
	}
	if opts.version {
		fmt.Fprintf(stdout, "nftables v%s (%s)\n", version, releaseName)
		return 0
	}
	src, filename := strings.Join(words, " "), ""
	if opts.hasFile {
		if len(words) > 0 {
			fmt.Fprintf(stderr, "Error: -f and commands on the command line cannot be combined\n")
			return 1
		}
		var b []byte
		if opts.file == "-" {
			b, err = io.ReadAll(stdin)
			filename = "/dev/stdin"
		} else {
			b, err = os.ReadFile(opts.file)
			filename = opts.file
		}
		if err != nil {
			fmt.Fprintf(stderr, "Error: Could not process rule: %v\n", err)
			return 1
		}
		src = string(b)
	}
	if strings.TrimSpace(src) == "" {
		if !opts.hasFile {
			fmt.Fprint(stderr, usage)
			return 1
		}
		return 0
	}
	cmds, err := parseInput(src)
	if err != nil {
		reportParseError(stderr, filename, src, err)
		return 1
	}
	if len(cmds) == 0 {
		return 0
	}
	var sock *nlSocket
	openSocket := func() (*nlSocket, error) {
		if sock == nil {
			s, err := openNetlink()
			if err != nil {
				return nil, err
			}
			sock = s
		}
		return sock, nil
	}
	defer func() {
		if sock != nil {
			sock.close()
		}
	}()

	if cmds[0].verb == "list" {
		s, err := openSocket()
		if err != nil {
			fmt.Fprintf(stderr, "Error: %v\n", err)
			return 1
		}
		l := &lister{sock: s, json: opts.json, terse: opts.terse, handle: opts.handle, out: stdout}
		for _, cmd := range cmds {
			if cmd.verb != "list" {
				fmt.Fprintf(stderr, "Error: list commands cannot be mixed with other commands\n")
				return 1
			}
			if err := l.list(cmd); err != nil {
				reportCommandError(stderr, filename, cmd, listErrorText(err))
				return 1
			}
		}
		return 0
	}

	tx := newTransaction(openSocket)
	if err := tx.build(cmds); err != nil {
		var ce *commandError
		var pe *parseError
		switch {
		case errors.As(err, &pe):
			reportParseError(stderr, filename, src, pe)
		case errors.As(err, &ce):
			reportCommandError(stderr, filename, cmds[ce.cmd], ce.err.Error())
		default:
			fmt.Fprintf(stderr, "Error: %v\n", err)
		}
		return 1
	}
	if len(tx.msgs) == 0 {
		return 0
	}
	s, err := openSocket()
	if err != nil {
		fmt.Fprintf(stderr, "Error: %v\n", err)
		return 1
	}
	kerrs, err := s.runBatch(tx.rawMessages(), !opts.check)
	for _, ke := range kerrs {
		text := "Could not process rule: " + strerror(ke.errno)
		if ke.text != "" {
			text += " (" + ke.text + ")"
		}
		if ke.index < 0 {
			fmt.Fprintf(stderr, "Error: %s\n", text)
			continue
		}
		reportCommandError(stderr, filename, cmds[tx.msgs[ke.index].cmd], text)
	}
	if err != nil {
		fmt.Fprintf(stderr, "Error: %v\n", err)
		return 1
	}
	if len(kerrs) > 0 {
		return 1
	}
	return 0
}

// listErrorText renders a listing error as nft does ("No such file or
// directory" for a missing table, chain, set or map).
func listErrorText(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return strerror(errno)
	}
	return err.Error()
}

// reportParseError prints a syntax error with its location, like nft:
//
//	/dev/stdin:3:5-9: Error: syntax error, ...
//	add rule ip t c foo bar
//	    ^^^^^
func reportParseError(w io.Writer, filename, src string, err error) {
	var pe *parseError
	if !errors.As(err, &pe) {
		fmt.Fprintf(w, "Error: %v\n", err)
		return
	}
	lines := strings.Split(src, "\n")
	loc := fmt.Sprintf("%d:%d-%d: ", pe.tok.line, pe.tok.col, pe.tok.col+max(len(pe.tok.text), 1)-1)
	if filename != "" {
		loc = filename + ":" + loc
	}
	fmt.Fprintf(w, "%sError: %s\n", loc, pe.msg)
	if pe.tok.line-1 < len(lines) {
		fmt.Fprintf(w, "%s\n%s%s\n", lines[pe.tok.line-1], strings.Repeat(" ", max(pe.tok.col-1, 0)),
			strings.Repeat("^", max(len(pe.tok.text), 1)))
	}
}

// reportCommandError prints an error for a whole command, like nft's
// "Could not process rule" messages.
func reportCommandError(w io.Writer, filename string, cmd *command, text string) {
	loc := fmt.Sprintf("%d:1-%d: ", cmd.line, max(len(cmd.src), 1))
	if filename != "" {
		loc = filename + ":" + loc
	}
	if filename == "" && cmd.line == 1 {
		loc = ""
	}
	fmt.Fprintf(w, "%sError: %s\n%s\n%s\n", loc, text, cmd.src, strings.Repeat("^", max(len(cmd.src), 1)))
}
