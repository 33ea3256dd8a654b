import Foundation

// What happens to a message a node cannot handle: retries with the node's policy, waiting out a
// server's outage, and in the end the errors port or the dead letters.
extension FlowRunner {
    /// A message that failed after its retries: to the `errors` port if wired, else to the dead letters.
    func fail(_ message: Message, error: any Error, attempts: Int, node: RunningNode) async {
        if let lost = error as? LeaseLost {
            // Not the message's fault: another instance runs its source now and does this work.
            node.context.logger.notice("\(lost.description); the message is left to the instance that holds it")
            message.delivery?.release(failure: lost.description)
            return
        }
        let reason = environment.redactor.redact(String(describing: error))
        let now = environment.clock.now()
        if let errorTargets = node.outputs[NodeDefinition.errorsPort], !errorTargets.isEmpty {
            node.metrics.failed(reason, at: now)
            node.context.logger.warning("message failed after \(attempts) attempt(s), sent to the errors port: \(reason)")
            var m = message
            m.attributes["error"] = reason
            m.attributes["error_flow"] = definition.id
            m.attributes["error_node"] = node.definition.id
            try? await route([m], from: node, port: NodeDefinition.errorsPort)
            return
        }
        node.metrics.failed(reason, at: now, deadLetter: true)
        do {
            let id = try await node.context.deadLetter(message.json, reason: reason, attempts: attempts)
            node.context.logger.warning("message failed after \(attempts) attempt(s), dead letter \(id): \(reason)")
            message.delivery?.release()
        } catch {
            node.context.logger.error("message failed and its dead letter could not be stored: \(environment.redactor.redact("\(error)")); its source will not be acknowledged")
            message.delivery?.release(failure: "dead letter not stored")
        }
    }

    /// Runs `body` with the node's retry policy (or only `attempts` attempts). A server that is
    /// unavailable is waited for without counting attempts. Returns nil when it gave up (the error and
    /// the attempts made are passed to `onFailure`) or the flow was cancelled.
    func withRetries<T>(
        _ node: RunningNode, attempts: Int? = nil, _ body: () async throws -> T, onFailure: (any Error, Int) async -> Void
    ) async -> T? {
        let policy = node.definition.retry
        let maxAttempts = attempts ?? policy.attempts
        var attempt = 0
        var outage = 0
        while true {
            attempt += 1
            let started = ContinuousClock.now
            do {
                let result = try await body()
                node.metrics.processing.recordNanoseconds((ContinuousClock.now - started).nanosecondsTotal)
                node.metrics.status.succeeded()
                if outage > 0 { node.context.logger.notice("resumed after \(outage) attempt(s) while a server was unavailable") }
                return result
            } catch is CancellationError where Task.isCancelled {
                return nil
            } catch let error as UnavailableError where !Task.isCancelled {
                // Not the message's fault: wait for the server however long it takes (not counted as an attempt).
                attempt -= 1
                outage += 1
                node.metrics.retrying(environment.redactor.redact(error.description), waiting: true, at: environment.clock.now())
                let wait = Self.outageDelay(outage, policy: policy)
                if outage == 1 || outage.isMultiple(of: 20) {
                    node.context.logger.warning("\(environment.redactor.redact(error.description)); waiting (attempt \(outage), next in \(DurationText.format(wait))), sources held back")
                }
                do { try await environment.clock.sleep(for: wait) } catch { return nil }
            } catch {
                let permanent = error is PermanentError || error is LeaseLost
                guard attempt < maxAttempts, !permanent, !Task.isCancelled else {
                    await onFailure(error, attempt)
                    return nil
                }
                node.metrics.retrying(environment.redactor.redact("\(error)"), waiting: false, at: environment.clock.now())
                let wait = policy.delay(afterAttempt: attempt, retryAfter: (error as? RetryAfterError)?.retryAfter)
                node.context.logger.debug("attempt \(attempt) failed, retrying in \(DurationText.format(wait)): \(environment.redactor.redact("\(error)"))")
                do { try await environment.clock.sleep(for: wait) } catch { return nil }
            }
        }
    }

    /// The wait between attempts while a server is unavailable: the node's backoff, but at most 5 s, so
    /// the hub resumes soon after the server returns.
    static func outageDelay(_ outage: Int, policy: RetryPolicy) -> Duration {
        min(policy.delay(afterAttempt: outage), .seconds(5))
    }

}
