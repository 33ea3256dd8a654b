// The `enchufe` executable: the CLI with every built-in node type. Another Swift package builds
// its own binary with more node types the same way: `await EnchufeCLI.main(extraNodeTypes: [...])`.
// It is linked with jemalloc (CJemalloc), which replaces glibc's malloc for the whole process
// (Package.swift says why); another package's binary may link it the same way.
import CJemalloc
import EnchufeCLI

await EnchufeCLI.main()
