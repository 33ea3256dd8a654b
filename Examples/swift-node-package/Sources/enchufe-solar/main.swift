// `enchufe-solar`: the whole `enchufe` command line (run, validate, test, nodes, docs...) with the
// node types of SolarNodes beside the built-in ones.
import EnchufeCLI
import SolarNodes

await EnchufeCLI.main(extraNodeTypes: SolarNodes.specs)
