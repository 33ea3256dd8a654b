// The `enchufe` executable: the CLI with every built-in node type. Another Swift package builds
// its own binary with more node types the same way: `await EnchufeCLI.main(extraNodeTypes: [...])`.
import EnchufeCLI

await EnchufeCLI.main()
