/// The node types Core itself provides; connector modules add theirs in the composition root.
public enum CoreNodes {
    public static let specs: [NodeSpec] = [
        ScheduleNode.spec,
        WebhookInNode.spec,
        FileInNode.spec,
        MapNode.spec,
        FilterNode.spec,
        SwitchNode.spec,
        LuaNode.spec,
        BatchNode.spec,
        SplitNode.spec,
        DedupeNode.spec,
        RateLimitNode.spec,
        DelayNode.spec,
        ReadingsNode.spec,
        TariffPeriodsNode.spec,
        CoefficientsNode.spec,
        ExportNode.spec,
        ResampleNode.spec,
        PseudonymizeNode.spec,
        AggregateNode.spec,
        CommunityBalanceNode.spec,
        CheapestHoursNode.spec,
        FileOutNode.spec,
        StoreReadingsNode.spec,
        LogNode.spec,
    ] + ExecNodes.specs
}
