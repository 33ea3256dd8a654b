/// The node types Core itself provides; connector modules add theirs in the composition root.
public enum CoreNodes {
    public static let specs: [NodeSpec] = [
        ScheduleNode.spec,
        StoreReadingsNode.spec,
        LogNode.spec,
    ]
}
