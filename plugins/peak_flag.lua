-- An example Lua node type (the plugins folder, `--plugins DIR`, default plugins/): every
-- reading of energy above a threshold is tagged as a peak. `enchufe nodes` lists it beside the
-- built-in types; `enchufe docs` documents it from the declaration below.

node = {
  type = "peak.flag",
  summary = "Tags readings above a threshold as peaks (a Lua node type from the plugins folder)",
  doc = [[
Each reading of `quantity` whose value is above `threshold` (in the reading's unit) gets the tag
`peak = "yes"`; the message gets the attribute `peaks` with how many. With `drop_others`, a
message without any peak is dropped.]],
  options = {
    { name = "threshold", type = "number", required = true, doc = "The value above which a reading is a peak." },
    { name = "quantity", type = "string", default = "consumption", doc = "Which readings to look at." },
    { name = "drop_others", type = "boolean", default = false, doc = "Drop messages without a peak." },
  },
  example = [==[
- id: peaks
  type: peak.flag
  threshold: 2.5
  to: [store]]==],
}

function process(msg, options)
  local peaks = 0
  for _, r in ipairs(msg.readings) do
    if r.quantity == options.quantity and r.value > options.threshold then
      r.tags = r.tags or {}
      r.tags.peak = "yes"
      peaks = peaks + 1
    end
  end
  if peaks == 0 and options.drop_others then return nil end
  msg.attributes = msg.attributes or {}
  msg.attributes.peaks = tostring(peaks)
  return msg
end
