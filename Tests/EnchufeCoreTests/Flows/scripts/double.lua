-- Doubles the payload's value.
function process(msg)
  msg.payload.value = msg.payload.value * 2
  return msg
end
